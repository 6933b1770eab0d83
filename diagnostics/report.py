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
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from diagnostics.checks import DEFAULT_CONTEXT_TOKENS, CheckResult, Context, MemoryEstimate, Verdict, decide, run_checks
from diagnostics.errors import UserError
from diagnostics.facts import Facts
from diagnostics.meta import now_iso, tool_version
from diagnostics.modelref import DEFAULT_MODEL, ModelRef, canonical_model
from diagnostics.models import ModelSpec
from diagnostics.redact import redact_env, redact_text, redact_tree

SCHEMA_ID = "gptoss-harness/check/1"
SCHEMA_FILE = Path(__file__).parent / "schema" / "check-1.schema.json"


@lru_cache(maxsize=1)
def json_schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


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
    model: str | ModelRef = DEFAULT_MODEL,
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
    ref = model if isinstance(model, ModelRef) else _reference(model)
    model = ref.text
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
    spec = ref.spec
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
        parts += target.cli_options()
    if online:
        parts.append("--online")
    return " ".join(parts)


def _reference(model: str | None) -> ModelRef:
    """A model named by a string: parsed as ``--model`` is, else taken as a served model's name
    (the bench passes those too; the CLI refuses what does not parse before calling this)."""
    if model is None or not str(model).strip():
        raise ValueError("model is empty; pass a hub id such as openai/gpt-oss-20b.")
    try:
        return ModelRef.parse(canonical_model(str(model)))
    except UserError:
        return ModelRef.served(str(model))


def check(model: str = DEFAULT_MODEL, online: bool = False, **injected: Any) -> CheckReport:
    """For notebooks: ``from diagnostics import check; check()`` displays a rich HTML table
    (the returned report renders itself); ``print(check())`` gives the text table."""
    return snapshot(model, online, **injected)
