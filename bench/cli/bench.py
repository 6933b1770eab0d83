"""`gptoss bench`: the benchmark sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.core import ParameterSource

from bench.cli.launch import fetch_once, layout_lines, parallel_options, placement, rank_context, relaunch
from bench.cli.options import Folder, model_option, not_empty, quiet_option
from bench.models.device import DEVICES
from diagnostics.errors import UserError
from diagnostics.modelref import ModelRef

HELP = """Benchmark gpt-oss: load time, memory, time to first token and tokens/s.

Comma lists are sweep axes; their product is the set of cases. Results go to
OUT/results.json after every case, then a report beside it; without --out each
run gets a new folder, gptoss-results/run-1, run-2, ... Exit code 0 when
every case ran or was recorded as oom/skipped, 1 when a case failed with an
error or the disk filled up, 2 on bad input, 130 when interrupted (resume with
--resume).

\b
Examples:
  gptoss bench --model synthetic:tiny                 # anywhere, CPU included, < 1 min
  gptoss bench                                        # openai/gpt-oss-20b, defaults for a T4
  gptoss bench --model synthetic:gpt-oss-20b --quant mxfp4,bf16 --cache dynamic,static
  gptoss bench --model synthetic:gpt-oss-20b --decode graph --batch-sizes 1,8
  gptoss bench --mode natural --efforts low,high --lengths 2048
  gptoss bench --out runs/t4 --resume                 # continue an interrupted run
  gptoss bench --model synthetic:gpt-oss-120b --quant bf16 --devices 0,1   # a pipeline over two GPUs
  gptoss bench --model synthetic:gpt-oss-120b --ep 2  # torchrun: each GPU holds half the experts
  gptoss bench --backend openai --base-url http://127.0.0.1:8000/v1 --model openai/gpt-oss-20b --concurrency 1,4
  gptoss bench --backend openai --base-url URL --model NAME --load closed --concurrency 1,8,32 --duration 60s
  gptoss bench --backend openai --base-url URL --model NAME --load poisson --request-rate 1,4,16,inf \\
      --num-requests 200 --slo ttft_s:2,tpot_s:0.015 --dataset prompts.jsonl --efforts low:0.5,high:0.5
"""


@click.command("bench", help=HELP)
@model_option("Hub id, local checkpoint folder, synthetic:NAME (tiny, gpt-oss-20b, gpt-oss-120b), or the served model name with --backend openai.")
@click.option("--backend", type=click.Choice(["transformers", "openai"]), default="transformers", show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@parallel_options
@click.option("--efforts", default=None, help="Reasoning efforts (low, medium, high)  [default: by --mode: auto runs one effort for throughput and, on real weights, all three in natural mode]")
@click.option("--lengths", default=None, help="New tokens per request (the cap in natural mode)  [default: 128,512; 32,64 for synthetic:tiny; with --decode graph too, generate runs the shortest only]")
@click.option("--prompt-lengths", default=None, help="Prompt tokens, chat template included.  [default: 128]")
@click.option("--batch-sizes", default="1", show_default=True)
@click.option("--concurrency", default=None, help="--backend openai: requests in flight at once; clients of a closed loop; the cap of an open loop (0: none).  [default: 1; open loops: 0]")
@click.option("--reps", type=int, default=3, show_default=True, help="Counted repetitions per case, at least.")
@click.option("--max-reps", type=int, default=10, show_default=True, help="Repeat a case until the median decode speed's 95%% interval is within --ci-target, at most this often.")
@click.option("--rep-time", "rep_time", default="20s", show_default=True, help="...and for no longer than this once --reps are done (a slow case stops at --reps).")
@click.option("--ci-target", type=float, default=0.01, show_default=True, help="Half-width of that interval, relative to the median (0.01 = ±1%%).")
@click.option("--warmup", default="1", show_default=True, help="Uncounted runs before them; with --load, uncounted requests (a number) or a period (10s).")
@click.option("--mode", type=click.Choice(["auto", "fixed", "natural"]), default="auto", show_default=True,
              help="fixed: exactly the asked tokens (throughput); natural: the model stops when it wants (tokens per channel, "
                   "time to the answer); auto: fixed at one effort, plus natural for every effort on real weights.")
@click.option("--quant", default="auto", show_default=True, help="auto, mxfp4, bf16 (comma list).")
@click.option("--cache", "caches", default="dynamic", show_default=True, help="dynamic, static (comma list).")
@click.option("--attn", default="auto", show_default=True, help="Attention implementation(s); the CPU needs eager.")
@click.option("--decode", "decodes", default=None,
              help="generate (transformers' generate), graph (one captured CUDA graph replayed per token), or both  [default: generate,graph on a GPU, generate elsewhere]")
@click.option("--out", "out_dir", type=Folder(path_type=Path), default=None,
              help="Folder for results.json and the report  [default: a new gptoss-results/run-N per run]")
@click.option("--resume", is_flag=True, help="Skip cases already in OUT/results.json (without --out: the newest gptoss-results/run-N).")
@click.option("--max-time", default=None, help="Stop starting cases past this budget (90s, 15m, 1h); the rest are recorded as skipped.")
@click.option("--no-report", is_flag=True, help="Write results.json only.")
@click.option("--measure-bandwidth", is_flag=True, help="Measure GPU memory bandwidth for the roofline instead of the datasheet figure.")
@click.option("--cache-dir", type=Folder(), default=None, help="Where synthetic checkpoints are written (default: the user cache).")
@click.option("--revision", default=None, callback=not_empty, help="Hub revision (branch, tag or commit).")
@click.option("--base-url", default=None, callback=not_empty, help="--backend openai: the server, e.g. http://127.0.0.1:8000/v1.")
@click.option("--api-key-env", default=None, callback=not_empty, help="--backend openai: the environment variable holding the API key (never written anywhere).")
@click.option("--timeout", "request_timeout_s", type=float, default=300.0, show_default=True, help="--backend openai: seconds per request, the whole request bounded.")
@click.option("--load", "load", type=click.Choice(["waves", "closed", "poisson", "gamma"]), default="waves", show_default=True,
              help="--backend openai: waves of --concurrency requests per repetition; closed: --concurrency clients sending back to back; poisson/gamma: requests arriving at --request-rate.")
@click.option("--request-rate", default=None, help="--load poisson|gamma: requests per second (comma list; inf sends all at once).")
@click.option("--burstiness", default=None, help="--load gamma: the shape of the gaps between arrivals (comma list; 1 is Poisson, below 1 burstier).  [default: 1]")
@click.option("--num-requests", type=int, default=None, help="--load: counted requests per case.  [default: 100]")
@click.option("--duration", default=None, help="--load: the counted period per case instead (60s, 5m).")
@click.option("--slo", default=None, help="--load: goodput against per-request bounds in seconds, e.g. ttft_s:2,tpot_s:0.015.")
@click.option("--dataset", type=click.Path(dir_okay=True, path_type=Path), default=None,
              help="--load: prompts from a JSONL file ({\"prompt\"} or {\"messages\"}, optional output_len) or ShareGPT-style JSON.")
@quiet_option
@click.pass_context
def command(ctx, devices, tp, ep, rank_worker, **options):
    place = placement(options["backend"], options["device"], devices, tp, ep, rank_worker)
    with rank_context(place):
        _run(ctx, place, **{**options, "quiet": options["quiet"] or not place.main})


def _run(ctx, place, *, model, backend, device, efforts, lengths, prompt_lengths, batch_sizes, concurrency, reps, max_reps,
         rep_time, ci_target, warmup, mode, quant, caches, attn, decodes, out_dir, resume, max_time, no_report,
         measure_bandwidth, cache_dir, revision, base_url, api_key_env, request_timeout_s, load, request_rate, burstiness,
         num_requests, duration, slo, dataset, quiet):
    from bench.sweep.config import (BenchConfig, decodes_for, default_lengths, parse_duration, parse_efforts, parse_int_list,
                                    parse_list, parse_positive_floats, parse_rates, parse_warmup, plan_efforts,
                                    plan_generate_lengths)
    from bench.results import CACHES, EFFORTS, QUANTS
    from bench.sweep.runner import Interrupted
    from bench.sweep.session import BenchRun

    ref = ModelRef.served(model) if backend == "openai" else ModelRef.parse(model)
    resolved_device = place.device  # this process's (first) device; None for a server
    if backend == "openai" and decodes is not None:
        raise UserError("--decode is for in-process runs (a server decodes its own way); drop it with --backend openai.")
    if place.kind != "single" and decodes is not None and "graph" in decodes:
        raise UserError(f"--decode graph captures one GPU's forward; a {place.kind} layout decodes with --decode generate.")
    if backend == "openai":  # a server's weights are unknown here: the efforts asked (or a mix), in the mode asked
        asked = parse_efforts(efforts) if efforts is not None else None
        plan = plan_efforts("natural" if mode == "natural" else "fixed", asked or list(EFFORTS), synthetic=False)
        if asked is None:
            plan.notes = []  # every effort by default, as servers have always been measured here
    else:
        asked = parse_list(efforts, "--efforts", EFFORTS) if efforts is not None else None
        plan = plan_efforts(mode, asked, synthetic=ref.kind == "synthetic")
    warmup_n, warmup_s = parse_warmup(warmup, sustained=load != "waves")
    open_loop = load in ("poisson", "gamma")
    cfg = BenchConfig(
        model=model,
        backend=backend,
        device=device,
        devices=place.devices,
        parallel=place.kind,
        ranks=place.ranks,
        efforts=plan.efforts,
        natural_efforts=plan.natural_efforts,
        lengths=parse_int_list(lengths, "--lengths") if lengths is not None else default_lengths(ref),
        prompt_lengths=parse_int_list(prompt_lengths, "--prompt-lengths") if prompt_lengths is not None else [128],
        batch_sizes=parse_int_list(batch_sizes, "--batch-sizes"),
        concurrency=(parse_int_list(concurrency, "--concurrency", minimum=0 if open_loop else 1) if concurrency is not None
                     else [0 if open_loop else 1]),
        reps=reps,
        max_reps=max_reps,
        rep_time_s=parse_duration(rep_time, "--rep-time"),
        ci_target=ci_target,
        warmup=warmup_n,
        mode=mode,
        quants=parse_list(quant, "--quant", QUANTS),
        caches=parse_list(caches, "--cache", CACHES),
        attns=parse_list(attn, "--attn"),
        decodes=decodes_for(decodes, resolved_device) if resolved_device and place.kind == "single" else ["generate"],
        max_time_s=parse_duration(max_time, allow_zero=False) if max_time is not None else None,
        cache_dir=cache_dir,
        revision=revision,
        measure_bandwidth=measure_bandwidth,
        base_url=base_url,
        api_key_env=api_key_env,
        request_timeout_s=request_timeout_s,
        load=load,
        request_rates=parse_rates(request_rate) if request_rate is not None else [],
        burstiness=parse_positive_floats(burstiness, "--burstiness") if burstiness is not None else [1.0],
        num_requests=num_requests,
        duration_s=parse_duration(duration, "--duration") if duration is not None else None,
        warmup_s=warmup_s,
        slo=slo,
        dataset=str(dataset) if dataset is not None else None,
    )
    if slo is not None:
        from bench.results.serving import Slo

        cfg.slo = Slo.parse(slo).text
    if dataset is not None:
        from bench.models.dataset import read_dataset

        if prompt_lengths is not None:
            raise UserError("--dataset brings its own prompts; drop --prompt-lengths.")
        read_dataset(dataset)  # a malformed file fails here, in one sentence, before any request
    if out_dir is None and place.main:
        from bench.sweep.outdir import run_folder

        out_dir = run_folder(resume=resume)
        if place.needs_launch:  # the ranks write into this very folder
            ctx.params["out_dir"] = out_dir
            ctx.set_parameter_source("out_dir", ParameterSource.COMMANDLINE)
    if place.plan is not None:  # an in-process model
        from bench.backends.transformers.parallel import check_tp_weights_path

        check_tp_weights_path(place.plan, cfg.quants)
    cfg.generate_lengths, length_notes = plan_generate_lengths(cfg.lengths, cfg.decodes, given=lengths is not None)
    run = BenchRun(cfg, ref, out_dir, resume=resume, notes=plan.notes + length_notes, main=place.main)  # a wrong --out or --resume fails before any download
    click.get_current_context().call_on_close(run.release)
    if place.needs_launch:
        fetch_once(ref, cache_dir, revision, progress=not quiet)
        run.release()  # rank 0 takes the folder over
        sys.exit(relaunch(ctx, place.ranks, place.plan.gpu_indices))
    if place.worker:  # every rank has read OUT before rank 0 writes to it
        from bench.models import ranks

        ranks.barrier()
    if backend == "openai":
        from bench.backends.openai.backend import OpenAIBackend, OpenAIOptions

        engine = OpenAIBackend(model, OpenAIOptions(base_url=base_url, api_key_env=api_key_env,
                                                    request_timeout_s=request_timeout_s, seed=cfg.seed,
                                                    natural_cap=cfg.natural_cap, dataset=cfg.dataset))
    else:
        from bench.backends.transformers.backend import TransformersBackend, TransformersOptions

        engine = TransformersBackend(ref, TransformersOptions(device=resolved_device, cache_dir=cache_dir, revision=revision,
                                                             natural_cap=cfg.natural_cap, plan=place.plan),
                                     progress=not quiet)
    try:
        outcome = run.run(engine, device=resolved_device, progress=not quiet)
    except Interrupted as e:
        click.echo(
            f"interrupted: {e.done} of {e.total} cases are saved in {e.path}; "
            f"run the same command with --resume --out {e.path.parent} to continue.",
            err=True,
        )
        sys.exit(130)
    if not place.main:  # a torchrun rank other than 0: rank 0 reports
        return
    from reports import render
    from reports.tables import summary_table

    click.echo(summary_table(outcome.results))
    for line in layout_lines(outcome.results):
        click.echo(line)
    click.echo(f"\nresults: {outcome.results_path}")
    if not no_report:
        files = render([outcome.results], out_dir)
        for p in (files.markdown, files.html):
            if p:
                click.echo(f"report:  {p}")
    oom = [c for c in outcome.results.cases if c.status == "oom"]
    errors = [c for c in outcome.results.cases if c.status == "error"]
    if oom:
        click.echo(f"{len(oom)} case(s) ran out of memory: recorded as oom (a result, not a failure).", err=True)
    if errors:
        click.echo(f"{len(errors)} case(s) failed with an error: see the report; exit code 1.", err=True)
        sys.exit(1)
