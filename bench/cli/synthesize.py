"""`gptoss synthesize`: write a synthetic gpt-oss checkpoint to a folder."""

from __future__ import annotations

import click

from bench.cli.options import Folder, quiet_option


@click.command("synthesize")
@click.argument("name", metavar="NAME")
@click.option("--out", "out", type=Folder(), default=None,
              help="Folder to write (default: the cache, see --cache-dir).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights.")
@click.option("--cache-dir", type=Folder(), default=None,
              help="Cache root when --out is not given (default: $GPTOSS_CACHE or ~/.cache/gptoss-harness).")
@click.option("--force", is_flag=True, help="Write again even when a valid checkpoint is already there.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Writer threads (default: one per usable core); the bytes are the same for any number.")
@quiet_option
def command(name: str, out: str | None, seed: int, cache_dir: str | None, force: bool, jobs: int | None,
            quiet: bool) -> None:
    """Write a synthetic gpt-oss checkpoint (random weights, real shapes, MXFP4 experts).

    NAME is tiny, gpt-oss-20b or gpt-oss-120b (the synthetic: prefix is optional). The folder
    holds config.json, MXFP4 safetensors shards, a harmony tokenizer and a manifest; any server
    that loads gpt-oss (transformers serve, vLLM) can load it offline. A valid folder is reused.
    Prints the folder's path on stdout.

    \b
    Example:
      gptoss synthesize tiny --out ./tiny-gptoss
      gptoss synthesize gpt-oss-20b --out /data/gpt-oss-20b-synthetic   # 13.8 GB
      gptoss synthesize gpt-oss-120b --out /dev/shm/gpt-oss-120b         # 65.3 GB, in RAM
      transformers serve /data/gpt-oss-20b-synthetic --port 8000
    """
    from bench.models.synthetic import build, default_jobs, ensure, get_spec
    from diagnostics.models import gb

    spec = get_spec(name)
    jobs = jobs or default_jobs()
    if out:
        ck = build(spec.name, out, seed=seed, progress=not quiet, force=force, jobs=jobs)
    else:
        ck = ensure(spec.name, seed=seed, cache_dir=cache_dir, progress=not quiet, force=force, jobs=jobs)
    total = ck.manifest.get("total_bytes", 0)
    if ck.written:
        rate = f", {total / ck.write_s / 1e9:.2f} GB/s" if ck.write_s else ""
        click.echo(f"wrote synthetic:{spec.name} (seed {seed}, {gb(total)}) in {ck.write_s:.1f} s "
                   f"with {jobs} thread(s){rate}", err=True)
    else:
        click.echo(f"synthetic:{spec.name} (seed {seed}) is already complete there; reused", err=True)
    click.echo(str(ck.path))
