"""Load-path check for a GPU machine: write a synthetic checkpoint, load it on each weights path.

    python -m bench.gpu_load_check --out DIR                       # synthetic:gpt-oss-20b, cuda
    python -m bench.gpu_load_check --out DIR --model synthetic:tiny --device cpu   # anywhere

Steps:

1. Write the checkpoint (``synthetic:NAME``) into the cache, timed, in a subprocess (the
   quantizer uses the GPU when there is one; the parent never holds a CUDA context).
   ``--rewrite`` writes it again even when a valid copy is cached, to time the write.
2. For each path in ``--paths`` (default ``bf16,mxfp4``): drop the page cache (``sync; echo 3 >
   /proc/sys/vm/drop_caches``, which needs root; otherwise ``posix_fadvise(DONTNEED)`` on every
   checkpoint file, which evicts those files without root; what worked is recorded), then load
   in a fresh subprocess (clean GPU memory) through ``bench.loading.load_model`` and record:
   load seconds, memory allocated after load, peak during load, reserved, the weights path
   and experts class that ran, any fallback reason, and the first generated token's latency
   (Triton compilation included) plus a short greedy generation as a smoke test.
3. Print a table (stdout) and write ``DIR/gpu_load_check.json``.

Runs on torch >= 2.4 and transformers >= 4.55 (the GPU image has torch 2.11, transformers 5.17):
it uses only from_pretrained, Mxfp4Config, generate and torch.cuda memory stats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GIB = 1024**3
# DESIGN.md, measured on one H100 (torch 2.11, transformers 5.17), synthetic:gpt-oss-20b
REFERENCE_20B_H100 = {
    "mxfp4": {"load_s": 10.0, "alloc_gib": 13.0, "peak_gib": 15.2},
    "bf16": {"load_s": 11.8, "alloc_gib": 39.1, "peak_gib": 42.9},
}


def _versions() -> dict[str, Any]:
    from importlib import metadata

    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("torch", "transformers", "triton", "kernels", "kernels-data", "huggingface_hub", "safetensors", "accelerate"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    try:
        from transformers.utils import import_utils as iu

        out["kernels_window"] = [getattr(iu, "KERNELS_MIN_VERSION", None), getattr(iu, "KERNELS_MAX_VERSION", None)]
    except Exception as e:  # pragma: no cover
        out["kernels_window"] = f"unknown ({e})"
    out["LOCAL_KERNELS"] = os.environ.get("LOCAL_KERNELS")
    try:
        import torch

        out["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
            out["compute_capability"] = list(torch.cuda.get_device_capability(0))
            out["cuda"] = torch.version.cuda
    except Exception as e:  # pragma: no cover
        out["torch_error"] = str(e)
    return out


def drop_page_cache(folder: str | Path) -> dict[str, Any]:
    """Evict the checkpoint from the page cache; says how (or why it could not)."""
    result: dict[str, Any] = {"method": None, "ok": False, "notes": []}
    try:
        os.sync()
    except Exception as e:  # pragma: no cover
        result["notes"].append(f"sync failed: {e}")
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        result.update(method="drop_caches", ok=True)
        return result
    except OSError as e:
        result["notes"].append(f"echo 3 > /proc/sys/vm/drop_caches failed: {e.strerror or e}")
    if not hasattr(os, "posix_fadvise"):
        result["notes"].append("posix_fadvise is not available here")
        return result
    evicted, failed = 0, 0
    for p in Path(folder).rglob("*"):
        if not p.is_file():
            continue
        try:
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                evicted += 1
            finally:
                os.close(fd)
        except OSError:
            failed += 1
    result.update(method="posix_fadvise_dontneed", ok=failed == 0 and evicted > 0)
    result["notes"].append(f"fadvise(DONTNEED) on {evicted} files, {failed} failed (best effort: the kernel may keep pages)")
    return result


# --------------------------------------------------------------------------------------------
# Child: one load in a fresh process
# --------------------------------------------------------------------------------------------


def child(model_path: str, model_id: str, quant: str, device: str, generate: int, result_path: str) -> int:
    import torch

    from bench.loading import load_model, unload
    from bench.sources import resolve

    out: dict[str, Any] = {"quant": quant, "device": device, "ok": False, "versions": _versions()}
    try:
        resolved = resolve(model_path, progress=False)
        resolved.id = model_id
        loaded = load_model(resolved, device=device, quant=quant)
        rec = loaded.record
        out["record"] = rec.to_dict()
        cuda = loaded.device.startswith("cuda")
        out["reserved_after_load_bytes"] = torch.cuda.memory_reserved(loaded.device) if cuda else None

        tok = loaded.tokenizer
        prompt = tok.apply_chat_template([{"role": "user", "content": "Say hello."}], add_generation_prompt=True,
                                         reasoning_effort="low", return_tensors="pt", return_dict=True)
        ids = prompt["input_ids"].to(loaded.device)
        mask = prompt["attention_mask"].to(loaded.device)
        pad = tok.pad_token_id

        def gen(n: int) -> tuple[float, int]:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.inference_mode():
                res = loaded.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                            do_sample=False, pad_token_id=pad)
            if cuda:
                torch.cuda.synchronize()
            return time.perf_counter() - t0, int(res.shape[1] - ids.shape[1])

        out["first_token_cold_s"], _ = gen(1)
        if generate > 0:
            secs, n = gen(generate)
            out["generate"] = {"new_tokens": n, "seconds": secs, "tok_s": n / secs if secs > 0 else None}
        if cuda:
            out["peak_after_generate_bytes"] = torch.cuda.max_memory_allocated(loaded.device)
        unload(loaded)
        out["ok"] = True
    except BaseException as e:  # the parent reports it; the child must always write its file
        out["error"] = f"{type(e).__name__}: {e}"
    Path(result_path).write_text(json.dumps(out, indent=2, default=str))
    return 0 if out["ok"] else 1


def write_child(model: str, cache_dir: str | None, rewrite: bool, result_path: str) -> int:
    """Write (or reuse) the synthetic checkpoint in its own process, so the parent never holds a
    CUDA context while the loads are measured (the quantizer runs on the GPU when there is one)."""
    out: dict[str, Any] = {"ok": False}
    try:
        from bench import synthetic

        out["quantize_device"] = synthetic.quantize_device()
        ck = synthetic.ensure(model, cache_dir=cache_dir, progress=True, force=rewrite)
        out.update(ok=True, path=str(ck.path), written=ck.written, write_s=ck.write_s,
                   total_bytes=ck.manifest.get("total_bytes"))
        out["versions"] = _versions()
    except BaseException as e:
        out["error"] = f"{type(e).__name__}: {e}"
    Path(result_path).write_text(json.dumps(out, indent=2, default=str))
    return 0 if out["ok"] else 1


# --------------------------------------------------------------------------------------------
# Parent (never imports torch: the measurements happen in fresh processes)
# --------------------------------------------------------------------------------------------


def _gib(n) -> str:
    return "-" if n is None else f"{n / GIB:.1f}"


def _num(x, fmt="{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def table(report: dict[str, Any]) -> str:
    rows = [("path", "ran", "experts class", "load s", "alloc GiB", "peak GiB", "1st tok s", "tok/s", "page cache", "ref (H100)")]
    for run in report["runs"]:
        rec = (run.get("result") or {}).get("record") or {}
        m = rec.get("metrics") or {}
        gen = (run.get("result") or {}).get("generate") or {}
        ref = REFERENCE_20B_H100.get(run["quant"]) if report.get("model") == "synthetic:gpt-oss-20b" else None
        ref_s = f"{ref['load_s']} s, {ref['alloc_gib']}/{ref['peak_gib']} GiB" if ref else "-"
        rows.append((
            run["quant"],
            rec.get("weights_path") or ("FAILED" if not (run.get("result") or {}).get("ok") else "-"),
            rec.get("experts_class") or "-",
            _num(m.get("load_s")),
            _gib(m.get("load_alloc_bytes")),
            _gib(m.get("load_peak_bytes")),
            _num((run.get("result") or {}).get("first_token_cold_s"), "{:.2f}"),
            _num(gen.get("tok_s")),
            run["page_cache"].get("method") or "not dropped",
            ref_s,
        ))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    extra = []
    if report.get("write"):
        w = report["write"]
        extra.append(f"checkpoint: {report['path']} ({w.get('total_bytes', 0) / 1e9:.2f} GB); "
                     + (f"written in {w['write_s']:.1f} s" if w.get("write_s") is not None else "reused from the cache"))
    for run in report["runs"]:
        res = run.get("result") or {}
        if res.get("error"):
            extra.append(f"{run['quant']}: {res['error']}")
        reason = (res.get("record") or {}).get("fallback_reason")
        if reason:
            extra.append(f"{run['quant']}: fallback reason: {reason}")
        for note in run["page_cache"].get("notes", []):
            extra.append(f"{run['quant']}: page cache: {note}")
    return "\n".join(lines + [""] + extra)


def _run_child(cmd: list[str], timeout: int, capture: bool = True) -> subprocess.CompletedProcess:
    if not capture:  # the writer's progress bar goes straight to our stderr
        return subprocess.run(cmd, timeout=timeout, stdout=subprocess.DEVNULL, text=True)
    return subprocess.run(cmd, timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu_load_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=False, help="folder for gpu_load_check.json and the child results")
    ap.add_argument("--model", default="synthetic:gpt-oss-20b")
    ap.add_argument("--cache-dir", default=None, help="cache root for the synthetic checkpoint")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--paths", default="bf16,mxfp4", help="comma-separated quant paths to load (auto, mxfp4, bf16)")
    ap.add_argument("--rewrite", action="store_true", help="write the synthetic checkpoint again to time it")
    ap.add_argument("--no-drop-caches", action="store_true", help="keep the page cache between loads")
    ap.add_argument("--generate", type=int, default=16, help="new tokens of the smoke-test generation (0: none)")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds allowed per load subprocess")
    # internal: the child process
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--write-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-path", help=argparse.SUPPRESS)
    ap.add_argument("--quant", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        return child(args.model_path, args.model, args.quant, args.device, args.generate, args.result)
    if args.write_child:
        return write_child(args.model, args.cache_dir, args.rewrite, args.result)
    if not args.out:
        ap.error("--out is required")

    from bench.errors import UserError
    from bench.sources import resolve

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    report: dict[str, Any] = {"model": args.model, "device": args.device, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "versions": None, "runs": []}
    if args.model.startswith("synthetic:"):
        write_path = out / "write.json"
        if write_path.exists():
            write_path.unlink()
        cmd = [sys.executable, "-m", "bench.gpu_load_check", "--write-child", "--model", args.model,
               "--result", str(write_path)] + (["--cache-dir", args.cache_dir] if args.cache_dir else []) \
            + (["--rewrite"] if args.rewrite else [])
        print(f"writing (or reusing) {args.model} ...", file=sys.stderr)
        proc = _run_child(cmd, args.timeout * 4, capture=False)
        try:
            write = json.loads(write_path.read_text())
        except (OSError, ValueError):
            write = {"ok": False, "error": f"the writer wrote no result (exit {proc.returncode})"}
        report["write"] = write
        report["versions"] = write.get("versions")
        if not write.get("ok"):
            print(f"error: writing {args.model} failed: {write.get('error')}", file=sys.stderr)
            (out / "gpu_load_check.json").write_text(json.dumps(report, indent=2, default=str))
            return 2
    try:
        resolved = resolve(args.model, cache_dir=args.cache_dir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report["path"] = resolved.path
    report["download_s"] = resolved.download_s

    for quant in paths:
        page = {"method": None, "ok": False, "notes": ["--no-drop-caches"]} if args.no_drop_caches else drop_page_cache(resolved.path)
        result_path = out / f"load-{quant}.json"
        if result_path.exists():
            result_path.unlink()
        cmd = [sys.executable, "-m", "bench.gpu_load_check", "--child", "--model-path", resolved.path, "--model", args.model,
               "--quant", quant, "--device", args.device, "--generate", str(args.generate), "--result", str(result_path)]
        print(f"loading {args.model} with --quant {quant} in a fresh process ...", file=sys.stderr)
        t0 = time.perf_counter()
        try:
            proc = _run_child(cmd, args.timeout)
            rc, stderr_tail = proc.returncode, (proc.stderr or "")[-4000:]
        except subprocess.TimeoutExpired as e:
            rc, stderr_tail = None, f"timed out after {args.timeout} s: {(e.stderr or '')[-2000:] if isinstance(e.stderr, str) else ''}"
        run: dict[str, Any] = {"quant": quant, "page_cache": page, "returncode": rc, "wall_s": time.perf_counter() - t0}
        try:
            run["result"] = json.loads(result_path.read_text())
        except (OSError, ValueError):
            run["result"] = {"ok": False, "error": f"the load process wrote no result (exit {rc})"}
        if not run["result"].get("ok"):
            run["stderr_tail"] = stderr_tail
        if report["versions"] is None:
            report["versions"] = run["result"].get("versions")
        report["runs"].append(run)

    report["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (out / "gpu_load_check.json").write_text(json.dumps(report, indent=2, default=str))
    print(table(report))
    print(f"\nwrote {out / 'gpu_load_check.json'}", file=sys.stderr)
    return 0 if all((r.get("result") or {}).get("ok") for r in report["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
