"""The benchmark configuration and the sweep it expands to.

Comma lists on the command line are sweep axes; their product is the set of cases. Cases are
ordered so the model is loaded as few times as possible: the quantization path and the attention
implementation need a reload, nothing else does.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, field

from bench.results import EFFORTS, MODES, CaseKey
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
    reps: int = 3
    warmup: int = 1
    mode: str = "fixed"
    quants: list[str] = field(default_factory=lambda: ["auto"])
    caches: list[str] = field(default_factory=lambda: ["dynamic"])
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
        """All cases, grouped by load (quant, attn) so each group needs one load."""
        keys = []
        server = self.backend == "openai"
        quants = ["server"] if server else self.quants
        caches = ["server"] if server else self.caches
        attns = ["server"] if server else self.attns
        concurrency = self.concurrency if server else [1]
        for quant, attn in itertools.product(quants, attns):
            for cache, batch, prompt_len, output_len, effort, conc in itertools.product(
                caches, self.batch_sizes, self.prompt_lengths, self.lengths, self.efforts, concurrency
            ):
                keys.append(
                    CaseKey(
                        effort=effort,
                        output_len=output_len,
                        prompt_len=prompt_len,
                        batch_size=batch,
                        mode=self.mode,
                        cache=cache,
                        quant=quant,
                        attn=attn,
                        concurrency=conc,
                    )
                )
        return keys


def default_lengths(ref: ModelRef) -> list[int]:
    """Output lengths when --lengths is not given.

    128 and 512 new tokens suit a Colab T4 session with gpt-oss-20b (a sweep of a few minutes);
    ``synthetic:tiny`` exists to run anywhere in well under a minute, so it gets 32 and 64.
    """
    return [32, 64] if (ref.kind, ref.name) == (SYNTHETIC, "tiny") else [128, 512]


# ---- parsing of command-line values -------------------------------------------------------------


# A valid value of each comma-list option, for the examples in its error messages.
EXAMPLES = {"--efforts": "low,high", "--lengths": "128,512", "--prompt-lengths": "128,1024", "--batch-sizes": "1,8",
            "--concurrency": "1,4", "--quant": "mxfp4,bf16", "--cache": "dynamic,static", "--attn": "eager"}


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


def parse_duration(text: str) -> float:
    """'90', '90s', '15m', '1.5h' -> seconds."""
    if not str(text).strip():
        raise UserError("--max-time is empty; give a duration such as 90s, 15m or 1h, or leave the option out.")
    m = _DURATION.match(str(text))
    if not m:
        raise UserError(f"--max-time got {text!r}; give a duration such as 90s, 15m or 1h.")
    value = float(m.group(1))
    if value <= 0:
        raise UserError(f"--max-time got {text!r}, which leaves no time for any case; give a duration such as 90s, 15m or 1h.")
    unit = (m.group(2) or "s").lower()
    return value * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}[unit]


def validate(cfg: BenchConfig) -> None:
    if cfg.reps < 1:
        raise UserError("--reps must be at least 1.")
    if cfg.warmup < 0:
        raise UserError("--warmup cannot be negative.")
    if cfg.mode not in MODES:
        raise UserError(f"--mode got {cfg.mode!r}; use fixed or natural.")
    for effort in cfg.efforts:
        if effort not in EFFORTS:
            raise UserError(f"--efforts got {effort!r}; use low, medium or high.")
    if cfg.backend == "openai" and not cfg.base_url:
        raise UserError("--backend openai needs --base-url, e.g. --base-url http://127.0.0.1:8000/v1.")
    if cfg.backend == "openai" and any(b != 1 for b in cfg.batch_sizes):
        raise UserError("--backend openai sends one sequence per request; drop --batch-sizes and use --concurrency.")
    if cfg.backend != "openai" and any(c != 1 for c in cfg.concurrency):
        raise UserError("--concurrency is for --backend openai; in-process runs sweep --batch-sizes instead.")
