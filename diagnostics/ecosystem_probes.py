"""Probes of today's ecosystem: the hub kernel's build variants, the released versions on the package
index, and the model's chat template. Like every probe, each reads the world only through
``Sources`` and never raises; without ``online`` none touches the network.
"""

from __future__ import annotations

import os
from pathlib import Path

from diagnostics import ecosystem, reasoning
from diagnostics.facts import IndexFacts, KernelFacts, TokenizerFacts
from diagnostics.probe_base import hub_cache_dir, model_snapshots, never_raises, probe_error
from diagnostics.sources import Sources

# --------------------------------------------------------------------------------------------
# The hub kernel's builds
# --------------------------------------------------------------------------------------------


def _build_folders(folder: Path) -> list[str] | None:
    """The build variant folders of a kernel checkout or snapshot (``build/<variant>/`` or the
    variants at its top); None when it holds none (a flat package folder)."""
    for base in (folder / "build", folder):
        if base.is_dir():
            names = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name.startswith("torch"))
            if names:
                return names
    return None


def kernel_variants(src: Sources, facts: KernelFacts, online: bool) -> None:
    """Which builds the kernel has: the hub's listing with --online, else what is on disk."""
    if online and facts.repo_id:
        revision = f"v{facts.version}" if facts.version is not None else None
        try:
            facts.variants = sorted(src.hub_list_build(facts.repo_id, revision, src.hub_timeout_s))
            facts.variants_source = "hub"
            return
        except Exception as e:  # noqa: BLE001
            facts.variants_error = f"the hub did not list the builds ({probe_error(e)})"
    for source, folder in (("local", facts.local_path if facts.local_ok else None), ("cache", facts.cache_path)):
        if not folder:
            continue
        try:
            names = _build_folders(Path(folder))
        except OSError as e:
            facts.variants_error = probe_error(e)
            continue
        if names is not None:
            facts.variants, facts.variants_source = names, source
            return


# --------------------------------------------------------------------------------------------
# The package index
# --------------------------------------------------------------------------------------------


def _released_from_pypi(doc: dict) -> list[str]:
    """Versions with at least one file, not all of them yanked."""
    out = []
    for version, files in (doc.get("releases") or {}).items():
        if files and not all(f.get("yanked") for f in files):
            out.append(version)
    return out


@never_raises(lambda e: IndexFacts(table_date=ecosystem.TABLE_DATE, online_error=e))
def probe_index(src: Sources, online: bool, now: str | None = None) -> IndexFacts:
    """Released versions of kernels, transformers and triton: PyPI with --online (a failure is a
    fact: the table stands in), the dated table otherwise."""
    facts = IndexFacts(table_date=ecosystem.TABLE_DATE,
                       source={name: "table" for name in ecosystem.INDEX_PACKAGES})
    if not online:
        return facts
    facts.online_checked = True
    errors = []
    for name in ecosystem.INDEX_PACKAGES:
        try:
            versions = _released_from_pypi(src.pypi_json(name, src.index_timeout_s))
            if not versions:
                raise ValueError("no releases in the answer")
            facts.versions[name] = versions
            facts.source[name] = "pypi"
        except Exception as e:  # noqa: BLE001 - unreachable, timeout, bad JSON: a fact
            errors.append(f"{name}: {probe_error(e)}")
    if errors:
        facts.online_error = "; ".join(errors)[:600]
    if facts.versions:
        from datetime import datetime, timezone

        facts.checked_at = now or datetime.now(timezone.utc).isoformat(timespec="seconds")
    return facts


# --------------------------------------------------------------------------------------------
# The chat template: reasoning effort
# --------------------------------------------------------------------------------------------


def _cached_model_folder(cache_dir: str, repo: str) -> str | None:
    """The newest snapshot of ``repo`` in the hub cache that holds a chat template file."""
    for snap in model_snapshots(cache_dir, repo):
        if any((snap / name).is_file() for name in reasoning.TEMPLATE_FILES):
            return str(snap)
    return None


@never_raises(lambda e: TokenizerFacts(error=e))
def probe_tokenizer(src: Sources, model: str, online: bool) -> TokenizerFacts:
    """Render the model's chat template for low/medium/high (local folder, hub cache, or with
    --online only the template files from the hub)."""
    facts = TokenizerFacts()
    folder, source = None, None
    if model and os.path.isdir(model):
        folder, source = model, "local"
    elif model and not model.startswith("synthetic:") and "/" in model:
        folder = _cached_model_folder(hub_cache_dir(src.environ, src.home)[0], model)
        source = "cache" if folder else None
    template, path = reasoning.read_template(folder) if folder else (None, None)
    if template is None and online and model and not model.startswith("synthetic:") and "/" in model \
            and not os.path.isdir(model):
        errors = []
        for name in reasoning.TEMPLATE_FILES:
            try:
                got = src.hub_download(model, name, src.hub_timeout_s)
            except Exception as e:  # noqa: BLE001 - chat_template.jinja is optional
                errors.append(f"{name}: {probe_error(e)}")
                continue
            template, path = reasoning.read_template(Path(got).parent)
            if template is not None:
                source = "hub"
                break
        if template is None and errors:
            facts.error = "the hub gave no chat template (" + "; ".join(errors)[:400] + ")"
    if template is None:
        return facts
    facts.source, facts.path = source, path
    try:
        facts.efforts, facts.system_lines = reasoning.check_template(template)
    except Exception as e:  # noqa: BLE001 - a template that does not render is a finding
        facts.error = f"the chat template does not render: {probe_error(e)}"
    return facts
