"""The report: facts + checks + verdict, and the one JSON shape every output is rendered from.

``snapshot()`` gathers facts (or takes injected ones), runs the checks and returns a
``CheckReport``. ``CheckReport.to_dict()`` is the documented JSON
(``diagnostics/schema/check-1.schema.json``, ``"schema": "gptoss-harness/check/1"``), redacted;
the text table and the HTML are rendered from that dict, so a secret cannot reach any output.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from diagnostics.checks import DEFAULT_CONTEXT_TOKENS, CheckResult, Context, MemoryEstimate, Verdict, decide, run_checks
from diagnostics.facts import Facts
from diagnostics.models import ModelSpec, spec_for
from diagnostics.redact import redact_env, redact_text, redact_tree

SCHEMA_ID = "gptoss-harness/check/1"
SCHEMA_FILE = Path(__file__).parent / "schema" / "check-1.schema.json"
DEFAULT_MODEL = "openai/gpt-oss-20b"


def tool_version() -> str:
    """The installed gptoss-harness version; from a source checkout's pyproject.toml if not installed."""
    try:
        from importlib.metadata import version

        return version("gptoss-harness")
    except Exception:  # noqa: BLE001 - PackageNotFoundError or a broken metadata store
        pass
    try:
        import re

        text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
        m = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def json_schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def model_problem(model: str | None) -> str | None:
    """One sentence saying what is wrong with a --model value, or None when it is usable."""
    import os

    if model is None or not str(model).strip():
        return "--model is empty; pass a hub id such as openai/gpt-oss-20b."
    m = str(model).strip()
    if spec_for(m) or os.path.isdir(m) or m.startswith("synthetic:"):
        return None
    parts = m.split("/")
    if len(parts) == 2 and all(parts):
        return None
    return (f"{m!r} is neither a hub id (org/name), a local checkpoint folder nor synthetic:<name>; "
            "pass e.g. openai/gpt-oss-20b or openai/gpt-oss-120b.")


def attn_problem(attn: str | None) -> str | None:
    """One sentence saying what is wrong with an --attn value, or None when it is usable."""
    from diagnostics.checks import ATTN_CHOICES

    if attn is None:
        return None
    a = attn.strip()
    if a in ATTN_CHOICES or (a.count("/") == 1 and all(a.split("/"))):
        return None
    return f"--attn {attn!r} is not an attention implementation; pass one of {', '.join(ATTN_CHOICES)} or a hub kernel repo id."


def canonical_model(model: str) -> str:
    """``gpt-oss-20b`` -> ``openai/gpt-oss-20b``; anything else unchanged."""
    m = model.strip()
    spec = spec_for(m)
    if spec and "/" not in m and not m.startswith("synthetic:"):
        return spec.hub_id
    return m


@dataclass
class CheckReport:
    model: str
    facts: Facts
    checks: list[CheckResult]
    verdict: Verdict
    spec: ModelSpec | None = None
    memory: MemoryEstimate | None = None
    created_at: str = field(default_factory=now_iso)
    tool_version: str = field(default_factory=tool_version)
    duration_s: float | None = None
    plan: Any = None  # diagnostics.plan.Plan: the pip commands to the MXFP4 path
    attn_implementation: str | None = None  # what --attn asked for (None: transformers' default)

    # ---- queries -----------------------------------------------------------------------------

    def check(self, check_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.id == check_id), None)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "warn"]

    def exit_code(self, strict: bool = False) -> int:
        """0 when nothing fails; 1 when a check fails, or (strict) warns."""
        if self.failed or (strict and self.warnings):
            return 1
        return 0

    # ---- JSON edge -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "schema": SCHEMA_ID,
            "tool_version": self.tool_version,
            "created_at": self.created_at,
            "duration_s": self.duration_s,
            "model": self.model,
            "model_spec": self.spec.to_dict() if self.spec else None,
            "memory_estimate": self.memory.to_dict() if self.memory else None,
            "facts": self.facts.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "verdict": self.verdict.to_dict(),
            "target": self.facts.target,
            "attn_implementation": self.attn_implementation,
            "plan": self.plan.to_dict() if self.plan is not None else None,
        }
        doc = redact_tree(doc)
        env = doc["facts"].get("environment") or {}
        if isinstance(env.get("variables"), dict):  # by name too, whoever built the facts
            env["variables"] = redact_env(env["variables"])
        return doc

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)

    # ---- display ---------------------------------------------------------------------------------

    def render_text(self, color: bool = False, width: int = 100) -> str:
        from diagnostics.render import render_text

        return render_text(self.to_dict(), color=color, width=width)

    def render_plan(self) -> str:
        from diagnostics.plan import render_plan

        return render_plan(self.plan, self.model, f"gptoss-harness {self.tool_version} · {self.created_at}")

    def render_html(self) -> str:
        from diagnostics.render import render_html

        return render_html(self.to_dict())

    def _repr_html_(self) -> str:  # Jupyter / Colab
        return self.render_html()

    def __str__(self) -> str:
        return self.render_text()

    def __repr__(self) -> str:
        return self.render_text()


def snapshot(
    model: str = DEFAULT_MODEL,
    online: bool = False,
    *,
    facts: Facts | None = None,
    sources: Any = None,
    progress: Callable[[str], None] | None = None,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    target: Any = None,
    attn: str | None = None,
    today: date | None = None,
    **injected: Any,
) -> CheckReport:
    """Gather the facts (or use ``facts``), run every check, decide.

    ``sources`` replaces the whole ``diagnostics.sources.Sources``; other keyword arguments
    replace single fields of it (``environ=``, ``nvml=``, ``run=``, ``disk_usage=``, ...), so a
    test or the bench can inject exactly the side effect it needs. Without ``online`` nothing
    touches the network. ``target`` (a ``diagnostics.targets.Target``) checks the installed packages
    against another GPU and driver (a what-if); ``attn`` is the attn_implementation to check."""
    if model is None or not str(model).strip():
        raise ValueError("model is empty; pass a hub id such as openai/gpt-oss-20b.")
    model = canonical_model(str(model))  # any other name is fine here (a served name, ...); the CLI is stricter
    started = time.perf_counter()
    if facts is None:
        from diagnostics.probes import gather
        from diagnostics.sources import Sources

        if sources is None:
            sources = Sources(**injected)
        elif injected:
            for k, v in injected.items():
                setattr(sources, k, v)
        facts = gather(sources, model, online=online, progress=progress)
    elif injected:
        raise TypeError(f"pass either facts= or side effects ({', '.join(injected)}), not both")
    if target is not None:
        from diagnostics.targets import apply_target

        facts = apply_target(facts, target)
    spec = spec_for(model)
    if spec is None:
        spec = _spec_from_folder(model)
    ctx = Context(model=model, spec=spec, context_tokens=context_tokens, attn=attn, today=today)
    results = run_checks(facts, ctx)
    verdict = decide(facts, ctx, results)
    from diagnostics.plan import make_plan

    plan = make_plan(facts, ctx, check_command=_check_command(model, target, online))
    return CheckReport(
        model=redact_text(model), facts=facts, checks=results, verdict=verdict, spec=spec, memory=ctx.memory,
        duration_s=round(time.perf_counter() - started, 3), plan=plan, attn_implementation=attn,
    )


def _check_command(model: str, target: Any, online: bool) -> str:
    """The command that re-runs this check, for the plan's last step."""
    parts = ["gptoss check"]
    if model != DEFAULT_MODEL:
        parts.append(f"--model {model}")
    if target is not None:
        if target.name:
            parts.append(f"--target {target.name}")
        elif target.gpu:
            parts.append(f'--gpu "{target.gpu}"')
        if target.driver and (not target.name or target.driver != _target_default_driver(target.name)):
            parts.append(f"--driver {target.driver}")
    if online:
        parts.append("--online")
    return " ".join(parts)


def _target_default_driver(name: str) -> str | None:
    from diagnostics.targets import TARGETS

    spec = TARGETS.get(name)
    return spec.driver if spec else None


def _spec_from_folder(model: str) -> ModelSpec | None:
    import os

    from diagnostics.models import spec_from_config

    cfg = os.path.join(model, "config.json")
    if not os.path.isfile(cfg):
        return None
    try:
        with open(cfg, encoding="utf-8") as fh:
            return spec_from_config(json.load(fh))
    except (OSError, ValueError):
        return None


def check(model: str = DEFAULT_MODEL, online: bool = False, **injected: Any) -> CheckReport:
    """For notebooks: ``from diagnostics import check; check()`` displays a rich HTML table
    (the returned report renders itself); ``print(check())`` gives the text table."""
    return snapshot(model, online, **injected)
