"""Where a model comes from: a hub id, a local checkpoint folder, or ``synthetic:<name>``.

``resolve(ref)`` turns the parsed ``--model`` (``diagnostics.modelref.ModelRef``) into a local folder that ``from_pretrained`` can
load, and says how it got there:

- ``synthetic:tiny`` / ``synthetic:gpt-oss-20b`` / ``synthetic:gpt-oss-120b``: written once
  into the cache (bench.models.synthetic), then reused;
- an existing folder (``./ckpt``, ``/models/gpt-oss-20b``, ``~/x``): used as is, after checking it
  holds a config.json and weights (a folder written by ``gptoss synthesize`` is recognised, and
  reported as synthetic);
- anything else that looks like ``org/name``: downloaded with huggingface_hub's
  ``snapshot_download`` (its progress bars on stderr), timed apart from the load. The
  ``original/`` and ``metal/`` folders of the openai repositories (another copy of the weights
  in other formats) are skipped.

Every failure a user can cause ends in a UserError with one sentence saying what to do.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from diagnostics.errors import UserError
from diagnostics.modelref import LOCAL, SYNTHETIC, ModelRef
from diagnostics.probes import is_offline

HUB_IGNORE_PATTERNS = ["original/*", "metal/*"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass
class ResolvedModel:
    id: str  # as the user gave it
    source: str  # hub | local | synthetic
    path: str  # the local folder to load
    revision: str | None = None  # hub: the commit; synthetic: seed and format version
    synthetic: bool = False
    download_s: float | None = None  # None when nothing was downloaded
    spec: str | None = None  # synthetic: the spec name (tiny, gpt-oss-20b, gpt-oss-120b)
    downloaded_bytes: int | None = None  # hub: bytes fetched by this call
    write_s: float | None = None  # synthetic: seconds spent writing it now (None when reused)

    def to_model_info(self):
        """The results file's ModelInfo (parameters are filled in after the load)."""
        from bench.results import ModelInfo

        return ModelInfo(id=self.id, source=self.source, path=self.path, revision=self.revision,
                         synthetic=self.synthetic)


def resolve(ref: ModelRef | str, cache_dir: str | Path | None = None, revision: str | None = None,
            progress: bool = True, seed: int | None = None) -> ResolvedModel:
    """A local checkpoint folder for ``ref`` (downloading it, or writing a synthetic one, if
    needed)."""
    if not isinstance(ref, ModelRef):
        ref = ModelRef.parse(ref)
    if ref.kind == SYNTHETIC:
        return _resolve_synthetic(ref, cache_dir, progress, seed)
    if ref.kind == LOCAL:
        return _resolve_local(ref.text, Path(ref.name))
    return _resolve_hub(ref.text, revision, progress)


# --------------------------------------------------------------------------------------------


def _resolve_synthetic(ref: ModelRef, cache_dir, progress: bool, seed: int | None) -> ResolvedModel:
    from bench.models.synthetic import DEFAULT_SEED, ensure

    seed = DEFAULT_SEED if seed is None else seed
    ck = ensure(ref.name, seed=seed, cache_dir=cache_dir, progress=progress)
    return ResolvedModel(
        id=ref.text, source="synthetic", path=str(ck.path), revision=_synthetic_revision(ck.manifest, seed),
        synthetic=True, download_s=None, spec=ref.name, write_s=ck.write_s,
    )


def _synthetic_revision(manifest: dict, seed: int) -> str:
    return f"seed{seed}-v{manifest.get('format_version', '?')}"


def _resolve_local(model: str, folder: Path) -> ResolvedModel:
    from bench.models.synthetic import check_folder, read_manifest

    folder = folder.resolve()
    if not (folder / "config.json").is_file():
        raise UserError(f"{model} has no config.json; pass the folder of a transformers checkpoint (the one holding config.json).")
    if not any(p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES) for p in folder.iterdir()):
        raise UserError(f"{model} holds a config.json but no weights (*.safetensors); finish the download or pass the complete checkpoint folder.")
    manifest = read_manifest(folder)
    if manifest and manifest.get("kind") == "gptoss-harness/synthetic-checkpoint":
        problem = check_folder(folder, manifest.get("name"), manifest.get("seed"))
        if problem:
            raise UserError(
                f"{model} is a damaged synthetic checkpoint ({problem}); write it again with "
                f"`gptoss synthesize {manifest.get('name')} --out {model}`."
            )
        seed = manifest.get("seed")
        return ResolvedModel(id=model, source="local", path=str(folder), revision=_synthetic_revision(manifest, seed),
                             synthetic=True, spec=manifest.get("name"))
    return ResolvedModel(id=model, source="local", path=str(folder))


def _hub_errors():
    try:
        from huggingface_hub import errors as e
    except ImportError:  # huggingface_hub < 0.23
        from huggingface_hub import utils as e
    names = ("LocalEntryNotFoundError", "RepositoryNotFoundError", "RevisionNotFoundError", "GatedRepoError",
             "HfHubHTTPError", "OfflineModeIsEnabled")
    return {n: getattr(e, n, None) or type(n, (Exception,), {}) for n in names}


def _bytes_newer_than(folder: Path, t0: float) -> int:
    total = 0
    for p in folder.rglob("*"):
        try:
            st = p.stat()  # follows the snapshot's symlinks to the blobs
        except OSError:
            continue
        if p.is_file() and st.st_mtime >= t0 - 1:
            total += st.st_size
    return total


def _resolve_hub(model: str, revision: str | None, progress: bool) -> ResolvedModel:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - a declared dependency
        raise UserError("huggingface_hub is not installed; `pip install huggingface_hub` or pass a local checkpoint folder.")
    err = _hub_errors()
    offline = is_offline(os.environ)
    endpoint = os.environ.get("HF_ENDPOINT") or None
    local_hint = f"pass a local checkpoint folder (--model /path/to/{model.split('/')[-1]})"
    if model.split("/")[-1] in ("gpt-oss-20b", "gpt-oss-120b"):
        local_hint += f" or synthetic:{model.split('/')[-1]} to benchmark the same shapes without a download"

    from huggingface_hub import utils as hub_utils

    were_disabled = hub_utils.are_progress_bars_disabled()
    if not progress and not were_disabled:
        hub_utils.disable_progress_bars()
    t0 = time.time()
    start = time.perf_counter()
    try:
        path = snapshot_download(
            repo_id=model, revision=revision, ignore_patterns=HUB_IGNORE_PATTERNS,
            local_files_only=offline, endpoint=endpoint,
        )
    except err["RevisionNotFoundError"]:
        raise UserError(f"revision {revision} of {model} does not exist on the Hugging Face Hub; check --revision.") from None
    except err["GatedRepoError"]:
        raise UserError(
            f"{model} is gated on the Hugging Face Hub; accept its terms on huggingface.co, log in with "
            f"`hf auth login` (or set HF_TOKEN), or {local_hint}."
        ) from None
    except err["RepositoryNotFoundError"]:
        raise UserError(
            f"{model} was not found on the Hugging Face Hub (or it is private); check the id, log in with "
            f"`hf auth login` for a private one, or {local_hint}."
        ) from None
    except err["LocalEntryNotFoundError"] as e:
        if offline:
            raise UserError(
                f"{model} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; unset HF_HUB_OFFLINE "
                f"to download it, or {local_hint}."
            ) from None
        raise UserError(
            f"the Hugging Face Hub could not be reached to download {model} ({_short(e)}) and it is not cached; "
            f"check the network or HF_ENDPOINT, set HF_HUB_OFFLINE=1 to use the cache only, or {local_hint}."
        ) from None
    except ValueError as e:  # HFValidationError: the hub's own rules for ids
        raise UserError(f"'{model}' is not a valid hub id ({_short(e)}); pass e.g. openai/gpt-oss-20b, a folder or synthetic:tiny.") from None
    except (err["OfflineModeIsEnabled"], err["HfHubHTTPError"], OSError, ConnectionError) as e:
        raise UserError(
            f"downloading {model} from the Hugging Face Hub failed ({_short(e)}); check the network, set "
            f"HF_HUB_OFFLINE=1 to use the cache only, or {local_hint}."
        ) from None
    finally:
        if not progress and not were_disabled:
            hub_utils.enable_progress_bars()
    elapsed = time.perf_counter() - start
    folder = Path(path)
    fetched = 0 if offline else _bytes_newer_than(folder, t0)
    commit = folder.name if re.fullmatch(r"[0-9a-f]{40}", folder.name) else revision
    return ResolvedModel(
        id=model, source="hub", path=str(folder), revision=commit, synthetic=False,
        download_s=elapsed if fetched > 0 else None, downloaded_bytes=fetched,
    )


def _short(e: BaseException) -> str:
    """The first line of an exception, without the long hub boilerplate."""
    text = str(e).strip().splitlines()
    first = text[0] if text else type(e).__name__
    for line in text:
        if "Error" in line and ":" in line:
            first = line
            break
    first = first.removeprefix("Got: ").strip().rstrip(".")
    return first[:160]
