"""Several GPUs for `gptoss bench`: ``--devices`` (a pipeline in this process) and ``--tp N`` /
``--ep N``, for which the command re-executes itself under torchrun, one process per GPU.

The parent checks the options, fetches or writes the model once, then runs
``python -m torch.distributed.run --standalone --nproc-per-node N -m bench bench ... --rank-worker``
and waits. Every rank runs the sweep; rank 0 alone prints, writes the results and the report,
and leaves its exit code in a file the parent passes on (torchrun itself says only "failed").

NVLink multicast (NVLS) stays off in every process the harness starts, the parent's own children
included: on a shared host a process that uses it can take GPUs out of service for everyone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping

import click
from click.core import ParameterSource

from diagnostics.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from bench.backends.transformers.parallel import ParallelPlan

#: Set in the harness's own environment at start-up, so every process it starts inherits them.
SAFE_ENV = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
}
WORKER_FLAG = "--rank-worker"
STATUS_ENV = "GPTOSS_RANK0_STATUS"


def apply_safe_env(environ: os._Environ | dict = os.environ) -> None:
    environ.update(SAFE_ENV)


def worker_args(ctx: click.Context) -> list[str]:
    """The command line that gives the workers the same options the user gave (defaults left
    out, so each rank derives them the same way), plus the worker flag."""
    args = [ctx.command.name or "bench"]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name is None or WORKER_FLAG in param.opts:
            continue
        if ctx.get_parameter_source(param.name) in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None):
            continue
        value = ctx.params.get(param.name)
        if param.is_flag:
            if value:
                args.append(param.opts[0])
            elif param.secondary_opts:
                args.append(param.secondary_opts[0])
        elif value is not None:
            args += [param.opts[0], str(value)]
    return [*args, WORKER_FLAG]


def torchrun_command(ranks: int, args: list[str], python: str = sys.executable) -> list[str]:
    return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", "-m", "bench", *args]


def visible_devices(gpus: list[int], current: str | None) -> str:
    """CUDA_VISIBLE_DEVICES for ranks that take ``gpus`` (numbered as this process sees them)."""
    listed = [x.strip() for x in (current or "").split(",") if x.strip()]
    return ",".join(listed[i] if i < len(listed) else str(i) for i in gpus)


def worker_env(environ: Mapping[str, str], gpus: list[int], ranks: int, status_file: Path) -> dict[str, str]:
    env = dict(environ)
    env.update(SAFE_ENV)
    env[STATUS_ENV] = str(status_file)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = visible_devices(gpus, environ.get("CUDA_VISIBLE_DEVICES"))
    if "OMP_NUM_THREADS" not in env:  # torchrun would set 1 and say so; share the cores instead
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // ranks))
    return env


def relaunch(ctx: click.Context, ranks: int, gpus: list[int]) -> int:
    """Run the command under torchrun and return rank 0's exit code."""
    if ranks < 2:
        raise UserError("a torchrun layout needs at least 2 processes.")
    with tempfile.TemporaryDirectory(prefix="gptoss-ranks-") as tmp:
        status = Path(tmp) / "rank0-exit-code"
        cmd = torchrun_command(ranks, worker_args(ctx))
        click.echo(f"starting {ranks} processes: torchrun --nproc-per-node {ranks}"
                   + (f" on GPUs {','.join(map(str, gpus))}" if gpus else " on the CPU (gloo)"), err=True)
        proc = subprocess.Popen(cmd, env=worker_env(os.environ, gpus, ranks, status))
        try:
            code = proc.wait()
        except KeyboardInterrupt:  # the ranks got the same signal: let rank 0 save, unless asked twice
            click.echo("waiting for rank 0 to save what it measured; Ctrl-C again to stop at once", err=True)
            try:
                code = proc.wait()
            except KeyboardInterrupt:
                proc.kill()
                proc.wait()
                return 130
        try:
            return int(status.read_text().strip())
        except (OSError, ValueError):
            return code or 1


def parallel_options(fn):
    """``--devices``, ``--tp``, ``--ep`` and the hidden flag a torchrun worker gets."""
    for option in reversed([
        click.option("--devices", default=None, help="Spread the model over these GPUs (0,1 or all): a pipeline through accelerate's device_map; with --tp/--ep, the ranks' GPUs."),
        click.option("--tp", type=int, default=None, help="Tensor parallel over N GPUs: torchrun with transformers' tp_plan='auto' (for gpt-oss it splits only the output head and the embedding)."),
        click.option("--ep", type=int, default=None, help="Expert parallel over N GPUs: torchrun, each GPU holding 1/N of every layer's experts."),
        click.option("--rank-worker", is_flag=True, hidden=True),
    ]):
        fn = option(fn)
    return fn


@dataclass
class Placement:
    """Where `gptoss bench` puts the model, from its options: the plan (this process's view),
    the GPUs as the user numbered them, and whether this process is a torchrun worker."""

    plan: "ParallelPlan | None"  # None for --backend openai
    devices: list[int] | None = None  # --devices as given (or the ranks' GPUs); None: one device
    worker: bool = False

    @property
    def main(self) -> bool:
        """Prints, writes the results and the report: the one process, or rank 0."""
        from bench.models import ranks

        return not self.worker or ranks.is_main()

    @property
    def needs_launch(self) -> bool:
        return self.plan is not None and self.plan.distributed and not self.worker

    @property
    def device(self) -> str | None:
        return self.plan.devices[0] if self.plan else None

    @property
    def kind(self) -> str:
        return self.plan.kind if self.plan else "single"

    @property
    def ranks(self) -> int:
        return self.plan.world_size if self.plan else 1


def placement(backend: str, device: str, devices: str | None, tp: int | None, ep: int | None,
              worker: bool) -> Placement:
    if backend != "transformers":
        if devices or tp or ep:
            raise UserError("--devices, --tp and --ep place an in-process model; a server places its own model, so drop them with --backend openai.")
        return Placement(None)
    import torch

    from bench.backends.transformers.parallel import parse_devices, plan_parallel
    from bench.models import ranks
    from bench.models.device import resolve_device

    gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    resolved = resolve_device(device)
    if not worker:
        plan = plan_parallel(resolved, devices, tp, ep, gpu_count)
        listed = plan.gpu_indices if (devices or plan.distributed) and plan.gpu_indices else None
        return Placement(plan, listed)
    # a rank: the parent checked the options and made its GPUs visible in rank order
    plan = plan_parallel(resolved, None, tp, ep, gpu_count).for_rank(ranks.local_rank())
    listed = None
    if plan.devices[0].startswith("cuda"):
        listed = parse_devices(devices, 1 << 16) if devices and devices.strip().lower() != "all" else list(range(plan.world_size))
    return Placement(plan, listed, worker=True)


def fetch_once(ref, cache_dir: str | None, revision: str | None, progress: bool) -> None:
    """Write the synthetic checkpoint, or download the hub one, before the ranks start: once,
    not once per rank."""
    from bench.models.sources import resolve

    resolve(ref, cache_dir=cache_dir, revision=revision, progress=progress)


@contextmanager
def rank_context(place: Placement) -> Iterator[None]:
    """Around a torchrun worker's whole run: join the process group, and leave rank 0's exit code
    where the parent looks for it. The worker itself then ends with 0, so torchrun reports only
    real crashes (an exception that escapes). Outside torchrun, nothing.

    torchrun stops its workers with SIGTERM when it is interrupted: that becomes a Ctrl-C here,
    so rank 0 keeps what it measured."""
    if not place.worker:
        yield
        return
    from bench.models import ranks

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    if not ranks.is_main():  # rank 0 speaks for all: the others keep to errors
        os.environ.update({"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"})
    ranks.init(place.plan.devices[0])
    code = 1
    try:
        yield
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except UserError as e:
        code = 2
        if ranks.is_main():
            click.echo(f"error: {e}", err=True)
    except KeyboardInterrupt:
        code = 130
    finally:
        ranks.finish()
        status = os.environ.get(STATUS_ENV)
        if status and ranks.is_main():
            Path(status).write_text(f"{code}\n")


def layout_lines(results) -> list[str]:
    """Per load on GPUs: the layout, what it split, and per GPU the memory after the load and at
    its peak beside `gptoss check`'s prediction."""
    from diagnostics.models import gib

    lines = []
    for load in results.loads:
        layout = load.layout
        if layout is None or not any(d.device.startswith("cuda") for d in layout.devices):
            continue
        head = f"{load.id} ({load.weights_path}): {layout.kind}, {len(layout.devices)} GPU(s)"
        if layout.concurrent:
            head += f"; split: {', '.join(layout.sharded)}" if layout.sharded else "; nothing split: every rank holds it all"
        lines.append(head)
        predicted = f" (predicted {gib(layout.predicted_load_peak_bytes)})" if layout.predicted_load_peak_bytes else ""
        for d in layout.devices:
            parts = [d.device, d.name or "?"]
            if d.layers is not None:
                parts.append(f"{d.layers} layers")
            parts.append(f"{gib(d.load_alloc_bytes)} after load, peak {gib(d.load_peak_bytes)}{predicted}")
            lines.append("  " + ", ".join(parts))
    return lines
