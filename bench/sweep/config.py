"""The benchmark configuration and the sweep it expands to.

Comma lists on the command line are sweep axes; their product is the set of cases. Cases are
ordered so the model is loaded as few times as possible: the quantization path and the attention
implementation need a reload, nothing else does.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, field

from bench.results import DECODES, EFFORTS, MODES, CaseKey
from diagnostics.errors import UserError
from diagnostics.modelref import DEFAULT_MODEL, SYNTHETIC, ModelRef


@dataclass
class BenchConfig:
    model: str = DEFAULT_MODEL
    backend: str = "transformers"  # transformers | openai
    device: str = "auto"
    efforts: list[str] = field(default_factory=lambda: ["low", "medium", "high"])
    lengths: list[int] = field(default_factory=lambda: [128, 512])
    prompt_lengths: list[int] = field(default_factory=lambda: [128])
    batch_sizes: list[int] = field(default_factory=lambda: [1])
    concurrency: list[int] = field(default_factory=lambda: [1])
    reps: int = 3  # counted repetitions per case, at least
    warmup: int = 1
    mode: str = "fixed"  # fixed | natural | auto (see plan_efforts)
    natural_efforts: list[str] = field(default_factory=list)  # efforts run in natural mode beside the fixed ones
    # Adaptive repetitions (None: exactly `reps`): on until the median decode speed's 95% interval
    # is within ci_target, at most max_reps, and no longer than rep_time_s of counted time.
    max_reps: int | None = None
    rep_time_s: float = 20.0
    ci_target: float = 0.01
    quants: list[str] = field(default_factory=lambda: ["auto"])
    caches: list[str] = field(default_factory=lambda: ["dynamic"])
    decodes: list[str] = field(default_factory=lambda: ["generate"])
    attns: list[str] = field(default_factory=lambda: ["auto"])
    max_time_s: float | None = None
    natural_cap: int | None = None  # natural mode: the most new tokens (defaults to the length)
    seed: int = 0
    cache_dir: str | None = None
    revision: str | None = None
    measure_bandwidth: bool = False
    # openai backend
    base_url: str | None = None
    api_key_env: str | None = None
    request_timeout_s: float = 300.0

    def to_dict(self) -> dict:
        return asdict(self)

    def cases(self) -> list[CaseKey]:
        """All cases, grouped by load (quant, attn) so each group needs one load.

        A graph case decodes on a static cache whatever ``--cache`` says, so the cache axis
        applies to ``generate`` only; graph cases come after the generate cases of their load,
        ordered by batch size and length, so one captured graph serves as many cases as it can.
        """
        server = self.backend == "openai"
        quants = ["server"] if server else self.quants
        attns = ["server"] if server else self.attns
        concurrency = self.concurrency if server else [1]
        decodes = ["server"] if server else self.decodes
        fixed, natural = self.mode_efforts()
        # The natural cases of the default plan measure what an effort costs in tokens and time to
        # the answer: one cap (the longest length) and one decode mode are enough for that.
        natural_lengths = [max(self.lengths)] if self.mode == "auto" else self.lengths
        natural_decodes = decodes[:1] if self.mode == "auto" else decodes
        keys = []
        for quant, attn in itertools.product(quants, attns):
            for decode in decodes:
                caches = ["server"] if server else (["static"] if decode == "graph" else self.caches)
                for mode, efforts, lengths in (("fixed", fixed, self.lengths), ("natural", natural, natural_lengths)):
                    if mode == "natural" and decode not in natural_decodes:
                        continue
                    for cache, batch, prompt_len, output_len, effort, conc in itertools.product(
                        caches, self.batch_sizes, self.prompt_lengths, lengths, efforts, concurrency
                    ):
                        keys.append(CaseKey(effort=effort, output_len=output_len, prompt_len=prompt_len,
                                            batch_size=batch, mode=mode, cache=cache, quant=quant, attn=attn,
                                            concurrency=conc, decode=decode))
        return keys

    def mode_efforts(self) -> tuple[list[str], list[str]]:
        """The efforts run in fixed mode and those run in natural mode."""
        if self.mode == "natural":
            return [], self.natural_efforts or self.efforts
        return self.efforts, self.natural_efforts


# ---- the default plan -------------------------------------------------------------------------

THROUGHPUT_EFFORT = "low"  # fixed mode pads every prompt to the same length: one effort measures all


@dataclass(frozen=True)
class Note:
    """A validity note for the results file: what the plan cannot measure, in one line."""

    code: str
    message: str


@dataclass
class EffortPlan:
    efforts: list[str]  # run in fixed mode (throughput)
    natural_efforts: list[str]  # run in natural mode (what an effort costs)
    notes: list[Note]


def plan_efforts(mode: str, efforts: list[str] | None, synthetic: bool) -> EffortPlan:
    """Which efforts run in which mode, for ``--mode`` and ``--efforts`` (None: not given).

    In fixed mode an effort only changes the system prompt, which is padded to the same length,
    so several efforts measure the same speed; an effort's real cost is the tokens the model
    spends reasoning, which only natural mode on real weights shows. ``auto`` (the default):
    real weights get throughput at one effort plus every effort in natural mode; synthetic
    weights get throughput at one effort. What the user names explicitly is run, with a note when
    it measures nothing new.
    """
    notes: list[Note] = []
    several = "; several efforts in fixed mode measure the same speed (an effort only changes the padded system prompt)"
    if mode == "natural":
        chosen = efforts or list(EFFORTS)
        if synthetic:
            notes.append(Note("natural_synthetic", "natural mode on random synthetic weights: the model never stops or "
                              "switches channels as a trained one does, so its channel and stopping figures mean nothing"))
        return EffortPlan([], chosen, notes)
    if mode == "fixed" or synthetic:
        if efforts and len(efforts) > 1:
            notes.append(Note("efforts_fixed", f"efforts {', '.join(efforts)} ran in fixed mode" + several))
            return EffortPlan(efforts, [], notes)
        if efforts:
            return EffortPlan(efforts, [], notes)
        why = ("synthetic weights: one effort (" + THROUGHPUT_EFFORT + ") measures the speed of all, since an effort only "
               "changes the padded system prompt; its real cost, the reasoning tokens, needs real weights in natural mode")
        notes.append(Note("one_effort", why if synthetic else "fixed mode: one effort (" + THROUGHPUT_EFFORT + ") measures the "
                          "speed of all, since an effort only changes the padded system prompt"))
        return EffortPlan([THROUGHPUT_EFFORT], [], notes)
    # auto on real weights
    natural = efforts or list(EFFORTS)
    return EffortPlan([natural[0] if efforts else THROUGHPUT_EFFORT], natural, notes)


def decodes_for(text: str | None, device: str) -> list[str]:
    """``--decode`` for a model on ``device`` (``cpu``, ``cuda:N``): by default both ways on a
    CUDA GPU (what ``generate`` gives, and what the GPU does with the same modules), ``generate``
    elsewhere. ``graph`` replays a CUDA graph, so it needs a CUDA GPU."""
    cuda = device.startswith("cuda")
    if text is None:
        return list(DECODES) if cuda else ["generate"]
    decodes = parse_list(text, "--decode", DECODES)
    if "graph" in decodes and not cuda:
        raise UserError(
            f"--decode graph replays a captured CUDA graph, so it needs a CUDA GPU and this run is on {device}; "
            "use --decode generate, or run on a GPU."
        )
    return decodes


def default_lengths(ref: ModelRef) -> list[int]:
    """Output lengths when --lengths is not given.

    128 and 512 new tokens suit a Colab T4 session with gpt-oss-20b (a sweep of a few minutes);
    ``synthetic:tiny`` exists to run anywhere in well under a minute, so it gets 32 and 64.
    """
    return [32, 64] if (ref.kind, ref.name) == (SYNTHETIC, "tiny") else [128, 512]


# ---- parsing of command-line values -------------------------------------------------------------


# A valid value of each comma-list option, for the examples in its error messages.
EXAMPLES = {"--efforts": "low,high", "--lengths": "128,512", "--prompt-lengths": "128,1024", "--batch-sizes": "1,8",
            "--concurrency": "1,4", "--quant": "mxfp4,bf16", "--cache": "dynamic,static", "--attn": "eager",
            "--decode": "generate,graph"}


def parse_list(text: str, option: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    items = [x.strip() for x in str(text).split(",") if x.strip()]
    if not items:
        example = EXAMPLES.get(option) or ",".join((allowed or ("a", "b"))[:2])
        raise UserError(f"{option} is empty; give one or more comma-separated values, e.g. {option} {example}.")
    if allowed:
        bad = [x for x in items if x not in allowed]
        if bad:
            raise UserError(f"{option} got {', '.join(bad)}; use one or more of {', '.join(allowed)}.")
    return list(dict.fromkeys(items))


def parse_int_list(text: str, option: str, minimum: int = 1) -> list[int]:
    out = []
    for item in parse_list(text, option):
        try:
            value = int(item)
        except ValueError:
            raise UserError(f"{option} got {item!r}; give whole numbers separated by commas, e.g. {option} "
                            f"{EXAMPLES.get(option, '1,2')}.") from None
        if value < minimum:
            raise UserError(f"{option} got {value}; each value must be at least {minimum}.")
        out.append(value)
    return out


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr)?\s*$", re.I)


def parse_duration(text: str, option: str = "--max-time", *, allow_zero: bool = True) -> float:
    """'90', '90s', '15m', '1.5h' -> seconds. Empty is refused, never taken as no value."""
    if not str(text).strip():
        raise UserError(f"{option} is empty; give a duration such as 90s, 15m or 1h, or leave the option out.")
    m = _DURATION.match(str(text))
    if not m:
        raise UserError(f"{option} got {text!r}; give a duration such as 90s, 15m or 1h.")
    value = float(m.group(1))
    if value <= 0 and not allow_zero:
        raise UserError(f"{option} got {text!r}, which leaves no time for any case; give a duration such as 90s, 15m or 1h.")
    unit = (m.group(2) or "s").lower()
    return value * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}[unit]


def validate(cfg: BenchConfig) -> None:
    if cfg.reps < 1:
        raise UserError("--reps must be at least 1.")
    if cfg.warmup < 0:
        raise UserError("--warmup cannot be negative.")
    if cfg.mode not in (*MODES, "auto"):
        raise UserError(f"--mode got {cfg.mode!r}; use auto, fixed or natural.")
    if cfg.max_reps is not None and cfg.max_reps < cfg.reps:
        raise UserError(f"--max-reps {cfg.max_reps} is below --reps {cfg.reps}; give at least as many.")
    if cfg.rep_time_s < 0 or not 0 < cfg.ci_target < 1:
        raise UserError("--rep-time must be zero or more and --ci-target between 0 and 1 (0.01 is ±1%).")
    for effort in [*cfg.efforts, *cfg.natural_efforts]:
        if effort not in EFFORTS:
            raise UserError(f"--efforts got {effort!r}; use low, medium or high.")
    if cfg.backend == "openai" and not cfg.base_url:
        raise UserError("--backend openai needs --base-url, e.g. --base-url http://127.0.0.1:8000/v1.")
    if cfg.backend == "openai" and any(b != 1 for b in cfg.batch_sizes):
        raise UserError("--backend openai sends one sequence per request; drop --batch-sizes and use --concurrency.")
    if cfg.backend != "openai" and any(c != 1 for c in cfg.concurrency):
        raise UserError("--concurrency is for --backend openai; in-process runs sweep --batch-sizes instead.")
