"""`gptoss bench`: the benchmark sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import click

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
  gptoss bench --backend openai --base-url http://127.0.0.1:8000/v1 --model openai/gpt-oss-20b --concurrency 1,4
"""


@click.command("bench", help=HELP)
@model_option("Hub id, local checkpoint folder, synthetic:NAME (tiny, gpt-oss-20b, gpt-oss-120b), or the served model name with --backend openai.")
@click.option("--backend", type=click.Choice(["transformers", "openai"]), default="transformers", show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--efforts", default=None, help="Reasoning efforts (low, medium, high)  [default: by --mode: auto runs one effort for throughput and, on real weights, all three in natural mode]")
@click.option("--lengths", default=None, help="New tokens per request (the cap in natural mode)  [default: 128,512; 32,64 for synthetic:tiny]")
@click.option("--prompt-lengths", default="128", show_default=True, help="Prompt tokens, chat template included.")
@click.option("--batch-sizes", default="1", show_default=True)
@click.option("--concurrency", default="1", show_default=True, help="Requests in flight at once (--backend openai).")
@click.option("--reps", type=int, default=3, show_default=True, help="Counted repetitions per case, at least.")
@click.option("--max-reps", type=int, default=10, show_default=True, help="Repeat a case until the median decode speed's 95%% interval is within --ci-target, at most this often.")
@click.option("--rep-time", "rep_time", default="20s", show_default=True, help="...and for no longer than this once --reps are done (a slow case stops at --reps).")
@click.option("--ci-target", type=float, default=0.01, show_default=True, help="Half-width of that interval, relative to the median (0.01 = ±1%%).")
@click.option("--warmup", type=int, default=1, show_default=True, help="Uncounted runs before them.")
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
@click.option("--timeout", "request_timeout_s", type=float, default=300.0, show_default=True, help="--backend openai: seconds per request.")
@quiet_option
def command(model, backend, device, efforts, lengths, prompt_lengths, batch_sizes, concurrency, reps, max_reps, rep_time, ci_target, warmup, mode,
            quant, caches, attn, decodes, out_dir, resume, max_time, no_report, measure_bandwidth, cache_dir, revision,
            base_url, api_key_env, request_timeout_s, quiet):
    from bench.sweep.config import (BenchConfig, decodes_for, default_lengths, parse_duration, parse_int_list, parse_list,
                                    plan_efforts)
    from bench.results import CACHES, EFFORTS, QUANTS
    from bench.sweep.runner import Interrupted
    from bench.sweep.session import BenchRun

    ref = ModelRef.served(model) if backend == "openai" else ModelRef.parse(model)
    resolved_device = None
    if backend != "openai":
        from bench.models.device import resolve_device

        resolved_device = resolve_device(device)
    if backend == "openai" and decodes is not None:
        raise UserError("--decode is for in-process runs (a server decodes its own way); drop it with --backend openai.")
    asked = parse_list(efforts, "--efforts", EFFORTS) if efforts is not None else None
    if backend == "openai":  # a server's weights are unknown here: the efforts asked, in the mode asked
        plan = plan_efforts("fixed" if mode == "auto" else mode, asked or list(EFFORTS), synthetic=False)
    else:
        plan = plan_efforts(mode, asked, synthetic=ref.kind == "synthetic")
    cfg = BenchConfig(
        model=model,
        backend=backend,
        device=device,
        efforts=plan.efforts,
        natural_efforts=plan.natural_efforts,
        lengths=parse_int_list(lengths, "--lengths") if lengths is not None else default_lengths(ref),
        prompt_lengths=parse_int_list(prompt_lengths, "--prompt-lengths"),
        batch_sizes=parse_int_list(batch_sizes, "--batch-sizes"),
        concurrency=parse_int_list(concurrency, "--concurrency"),
        reps=reps,
        max_reps=max_reps,
        rep_time_s=parse_duration(rep_time, "--rep-time"),
        ci_target=ci_target,
        warmup=warmup,
        mode=mode,
        quants=parse_list(quant, "--quant", QUANTS),
        caches=parse_list(caches, "--cache", CACHES),
        attns=parse_list(attn, "--attn"),
        decodes=decodes_for(decodes, resolved_device) if resolved_device else ["generate"],
        max_time_s=parse_duration(max_time, allow_zero=False) if max_time is not None else None,
        cache_dir=cache_dir,
        revision=revision,
        measure_bandwidth=measure_bandwidth,
        base_url=base_url,
        api_key_env=api_key_env,
        request_timeout_s=request_timeout_s,
    )
    if out_dir is None:
        from bench.sweep.outdir import run_folder

        out_dir = run_folder(resume=resume)
    run = BenchRun(cfg, ref, out_dir, resume=resume, notes=plan.notes)  # a wrong --out or --resume fails before any download
    click.get_current_context().call_on_close(run.release)
    if backend == "openai":
        from bench.backends.openai.backend import OpenAIBackend, OpenAIOptions

        engine = OpenAIBackend(model, OpenAIOptions(base_url=base_url, api_key_env=api_key_env,
                                                    request_timeout_s=request_timeout_s, seed=cfg.seed,
                                                    natural_cap=cfg.natural_cap))
    else:
        from bench.backends.transformers.backend import TransformersBackend, TransformersOptions

        engine = TransformersBackend(ref, TransformersOptions(device=resolved_device, cache_dir=cache_dir, revision=revision,
                                                             natural_cap=cfg.natural_cap),
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
    from reports import render
    from reports.tables import summary_table

    click.echo(summary_table(outcome.results))
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
