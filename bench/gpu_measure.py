"""Measurements of the harness itself, for the benchmarks page (run on a GPU machine).

    python -m bench.gpu_measure overhead --model synthetic:gpt-oss-20b --quant bf16 --out DIR

``overhead``: what the per-token clock costs. One load; then alternating runs (A/B/A/B...) of a
bare ``model.generate`` (wall clock around the call, CUDA synchronized) and the instrumented
path the bench uses (streamer clock, NVML sampler running), same prompt and exactly the same number
of new tokens. Tokens/s of each = new tokens / end-to-end seconds; overhead = 1 - instrumented /
bare, medians over the pairs. It also reports the run-to-run coefficient of variation of the
instrumented path's decode tokens/s.

``profile``: where a generated token's time goes. Bare ``generate`` runs give the wall time per
token; one more run under ``torch.profiler`` gives the GPU kernel time per token (CUPTI; kernels
replayed from CUDA graphs included). Their ratio is how busy the GPU is: near 1, the path is bound
by the GPU; well under 1, by Python and kernel launches on the CPU, so its speed follows the host
CPU and varies with it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from bench.config import BenchConfig
from bench.results import CaseKey
from bench.timing import clock, generation_metrics


def _each_cache(model: str, quant: str, caches: list[str], measure, device: str = "cuda") -> list[dict]:
    """One load of ``quant``, then ``measure(backend, record, cache)`` for each cache."""
    from bench.backends.transformers_backend import TransformersBackend

    cfg = BenchConfig(model=model, device=device, quants=[quant], caches=caches)
    backend = TransformersBackend(cfg, progress=False)
    record = backend.load(quant, "auto")
    results = [measure(backend, record, cache) for cache in caches]
    backend.unload()
    return results


def overhead(model: str, quant: str, caches: list[str], new_tokens: int, prompt_len: int, pairs: int, out: Path,
             device: str = "cuda") -> list[dict]:
    return _each_cache(model, quant, caches, lambda backend, record, cache: _overhead_one(
        backend, record, model, quant, cache, new_tokens, prompt_len, pairs, out), device)


def _header(backend, record, model: str, quant: str, cache: str, new_tokens: int) -> dict:
    """What every measurement file starts with: what ran, on what."""
    import torch

    return {
        "model": model, "quant_asked": quant, "weights_path": record.weights_path, "cache": cache,
        "new_tokens": new_tokens, "prompt_tokens": len(backend.prompt.ids),
        "gpu": torch.cuda.get_device_name() if backend._cuda else "cpu", "torch": torch.__version__,
    }


def _stop(monitor) -> None:
    """Stop the NVML sampler, which only runs on a GPU."""
    if monitor is not None:
        monitor.stop()


def _bare_generate(backend, cache: str, new_tokens: int, prompt_len: int, quant: str):
    """(case key, a function running one bare ``generate`` that returns its tokens/s)."""
    import torch

    key = CaseKey("low", new_tokens, prompt_len, cache=cache, quant=quant)
    backend.prepare(key)
    ids = torch.tensor([backend.prompt.ids], device=backend.loaded.device)
    mask = torch.ones_like(ids)
    kwargs = backend._generation_kwargs(new_tokens, cache, natural=False)
    kwargs.pop("return_dict_in_generate")
    model_ = backend.loaded.model
    sync = torch.cuda.synchronize if backend._cuda else (lambda: None)

    def bare() -> float:
        sync()
        t0 = clock()
        with torch.inference_mode():
            out = model_.generate(input_ids=ids, attention_mask=mask, **kwargs)
        sync()
        n = out.shape[1] - ids.shape[1]
        assert n == new_tokens, f"bare generate made {n} tokens, not {new_tokens}"
        return n / (clock() - t0)

    return key, bare


def _overhead_one(backend, record, model, quant, cache, new_tokens, prompt_len, pairs, out) -> dict:
    key, bare = _bare_generate(backend, cache, new_tokens, prompt_len, quant)
    monitor = backend.monitor  # prepare() started it (on a GPU): the bare arm runs without it
    _stop(monitor)

    def instrumented() -> tuple[float, float]:
        if monitor is not None:
            monitor.start()
        [t] = backend.once(key)
        _stop(monitor)
        assert t.new_tokens == new_tokens, f"instrumented run made {t.new_tokens} tokens"
        m = generation_metrics(t)
        return t.new_tokens / m["e2e_s"], m["decode_tok_s"]

    bare(), instrumented()  # warm-up (compilation, autotuning)
    a, b, decode = [], [], []
    for _ in range(pairs):
        a.append(bare())
        e2e_rate, dec = instrumented()
        b.append(e2e_rate)
        decode.append(dec)
    result = {
        **_header(backend, record, model, quant, cache, new_tokens),
        "pairs": pairs,
        "bare_tok_s": a,
        "instrumented_tok_s": b,
        "instrumented_decode_tok_s": decode,
        "bare_median": statistics.median(a),
        "instrumented_median": statistics.median(b),
        "overhead_frac": 1 - statistics.median(b) / statistics.median(a),
        "decode_cv": statistics.stdev(decode) / statistics.fmean(decode) if len(decode) > 1 else None,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"overhead-{record.weights_path}-{cache}.json").write_text(json.dumps(result, indent=1))
    _print(result)
    return result


def profile(model: str, quant: str, caches: list[str], new_tokens: int, prompt_len: int, runs: int, out: Path,
            device: str = "cuda") -> list[dict]:
    return _each_cache(model, quant, caches, lambda backend, record, cache: _profile_one(
        backend, record, model, quant, cache, new_tokens, prompt_len, runs, out), device)


def _profile_one(backend, record, model, quant, cache, new_tokens, prompt_len, runs, out) -> dict:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    _key, bare = _bare_generate(backend, cache, new_tokens, prompt_len, quant)
    _stop(backend.monitor)
    bare(), bare()  # warm-up (compilation, autotuning, CUDA graph capture)
    rates = [bare() for _ in range(runs)]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if backend._cuda else [])
    with torch_profile(activities=activities) as prof:
        bare()
    # Device-side events only: CPU ops (aten::*, a compiled graph's call) carry their kernels'
    # time too, and counting both would count it twice.
    kernels = [e for e in prof.key_averages()
               if str(getattr(e, "device_type", "")).endswith("CUDA") and getattr(e, "self_device_time_total", 0) > 0]
    gpu_us = sum(e.self_device_time_total for e in kernels)
    wall_ms = 1000 / statistics.median(rates)
    gpu_ms = gpu_us / 1000 / new_tokens
    top = sorted(kernels, key=lambda e: e.self_device_time_total, reverse=True)[:8]
    result = {
        **_header(backend, record, model, quant, cache, new_tokens),
        "bare_tok_s": rates,
        "wall_ms_per_token": wall_ms,
        "gpu_kernel_ms_per_token": gpu_ms,
        "gpu_busy_frac": gpu_ms / wall_ms,
        "top_kernels": [{"name": e.key[:120], "calls": e.count, "ms_per_token": e.self_device_time_total / 1000 / new_tokens}
                        for e in top],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"profile-{record.weights_path}-{cache}.json").write_text(json.dumps(result, indent=1))
    print(f"{result['gpu']} {record.weights_path}/{cache}: {statistics.median(rates):.2f} tok/s, wall {wall_ms:.2f} ms/token, "
          f"GPU kernels {gpu_ms:.2f} ms/token, GPU busy {100 * result['gpu_busy_frac']:.0f}%", flush=True)
    for k in result["top_kernels"][:5]:
        print(f"    {k['ms_per_token']:7.3f} ms/token  {k['calls']:6d} calls  {k['name']}", flush=True)
    return result


def _print(r: dict) -> None:
    print(
        f"{r['gpu']} {r['weights_path']}/{r['cache']}: bare {r['bare_median']:.2f} tok/s, "
        f"instrumented {r['instrumented_median']:.2f} tok/s, overhead {100 * r['overhead_frac']:+.2f}%, "
        f"decode CV {100 * (r['decode_cv'] or 0):.2f}% over {r['pairs']} runs",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_measure", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    o = sub.add_parser("overhead", help="instrumentation overhead A/B and run-to-run CV")
    f = sub.add_parser("profile", help="GPU kernel time against wall time per generated token")
    for sp, cache, new_tokens in ((o, "dynamic", 256), (f, "dynamic,static", 64)):
        sp.add_argument("--model", default="synthetic:gpt-oss-20b")
        sp.add_argument("--quant", default="bf16")
        sp.add_argument("--device", default="cuda", help="cuda; cpu runs the same steps (no GPU time to find)")
        sp.add_argument("--cache", default=cache, help="comma list, one load for all")
        sp.add_argument("--new-tokens", type=int, default=new_tokens)
        sp.add_argument("--prompt-len", type=int, default=128)
        sp.add_argument("--out", type=Path, default=Path("gpu-measure"))
    o.add_argument("--pairs", type=int, default=5)
    f.add_argument("--runs", type=int, default=3, help="bare runs timed without the profiler")
    args = p.parse_args(argv)
    if args.what == "overhead":
        overhead(args.model, args.quant, args.cache.split(","), args.new_tokens, args.prompt_len, args.pairs, args.out, args.device)
    else:
        profile(args.model, args.quant, args.cache.split(","), args.new_tokens, args.prompt_len, args.runs, args.out, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
