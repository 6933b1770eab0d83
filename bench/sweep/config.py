"""The benchmark configuration and the sweep it expands to.

Comma lists on the command line are sweep axes; their product is the set of cases. Cases are
ordered so the model is loaded as few times as possible: the quantization path and the attention
implementation need a reload, nothing else does.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass, field

from bench.results import DECODES, EFFORTS, LOADS, MODES, CaseKey, effort_mix
from diagnostics.errors import UserError
from diagnostics.modelref import DEFAULT_MODEL, SYNTHETIC, ModelRef
from diagnostics.redact import redact_url


@dataclass
class BenchConfig:
    model: str = DEFAULT_MODEL
    backend: str = "transformers"  # transformers | openai
    device: str = "auto"
    devices: list[int] | None = None  # GPUs holding weights (--devices, or the ranks' GPUs); None: the one device
    parallel: str = "single"  # single | pipeline | tensor-parallel | expert-parallel
    ranks: int = 1  # processes under torchrun (--tp/--ep)
    efforts: list[str] = field(default_factory=lambda: ["low", "medium", "high"])
    lengths: list[int] = field(default_factory=lambda: [128, 512])
    generate_lengths: list[int] | None = None  # fixed-mode lengths of the generate decode (None: lengths)
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
    # openai backend, sustained load (--load closed|poisson|gamma; waves is one burst per repetition)
    load: str = "waves"
    request_rates: list[float | None] = field(default_factory=list)  # open loops; None: inf (all at once)
    burstiness: list[float] = field(default_factory=lambda: [1.0])
    num_requests: int | None = None  # measured requests per case, or
    duration_s: float | None = None  # the measured period per case
    warmup_s: float | None = None  # a warm-up period instead of --warmup requests
    slo: str | None = None  # e.g. "ttft_s:2,tpot_s:0.015": goodput
    dataset: str | None = None  # a JSONL / ShareGPT file of prompts

    def to_dict(self) -> dict:
        d = asdict(self)
        if d.get("base_url"):
            d["base_url"] = redact_url(d["base_url"])  # a key in its query string is never written
        return d

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
        prompt_lengths = [0] if self.dataset else self.prompt_lengths  # a dataset brings its prompts
        dataset = dataset_name(self.dataset) if self.dataset else None
        fixed, natural = self.mode_efforts()
        # The natural cases of the default plan measure what an effort costs in tokens and time to
        # the answer: one cap (the longest length) and one decode mode are enough for that.
        natural_lengths = [max(self.lengths)] if self.mode == "auto" else self.lengths
        natural_decodes = decodes[:1] if self.mode == "auto" else decodes
        keys = []
        for quant, attn in itertools.product(quants, attns):
            for decode in decodes:
                caches = ["server"] if server else (["static"] if decode == "graph" else self.caches)
                fixed_lengths = (self.generate_lengths or self.lengths) if decode == "generate" else self.lengths
                for mode, efforts, lengths in (("fixed", fixed, fixed_lengths), ("natural", natural, natural_lengths)):
                    if mode == "natural" and decode not in natural_decodes:
                        continue
                    for cache, batch, prompt_len, output_len, effort, conc, (rate, burst) in itertools.product(
                        caches, self.batch_sizes, prompt_lengths, lengths, efforts, concurrency, self.arrivals()
                    ):
                        keys.append(CaseKey(effort=effort, output_len=output_len, prompt_len=prompt_len,
                                            batch_size=batch, mode=mode, cache=cache, quant=quant, attn=attn,
                                            concurrency=conc, decode=decode, load=self.load, request_rate=rate,
                                            burstiness=burst, dataset=dataset))
        return keys

    def mode_efforts(self) -> tuple[list[str], list[str]]:
        """The efforts run in fixed mode and those run in natural mode."""
        if self.mode == "natural":
            return [], self.natural_efforts or self.efforts
        return self.efforts, self.natural_efforts


    def arrivals(self) -> list[tuple[float | None, float | None]]:
        """The (request rate, burstiness) axes of the load model: open loops only."""
        if self.load not in ("poisson", "gamma"):
            return [(None, None)]
        bursts = self.burstiness if self.load == "gamma" else [None]
        return list(itertools.product(self.request_rates, bursts))

    def load_plan(self, key: CaseKey):
        """How a sustained-load case is sent (bench.backends.base.LoadPlan)."""
        from bench.backends.base import LoadPlan

        return LoadPlan(
            kind=key.load,
            concurrency=key.concurrency,
            rate=key.request_rate,
            burstiness=key.burstiness or 1.0,
            num_requests=None if self.duration_s is not None else (self.num_requests or DEFAULT_NUM_REQUESTS),
            duration_s=self.duration_s,
            warmup_requests=0 if self.warmup_s else self.warmup,
            warmup_s=self.warmup_s or 0.0,
            seed=self.seed,
        )


DEFAULT_NUM_REQUESTS = 100  # per sustained-load case, when neither --num-requests nor --duration is given


def dataset_name(path: str) -> str:
    """How a case key names a --dataset file: its name without the suffix."""
    from pathlib import Path

    return Path(path).stem or "dataset"

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


def plan_generate_lengths(lengths: list[int], decodes: list[str], given: bool) -> tuple[list[int] | None, list[Note]]:
    """The fixed-mode lengths of the ``generate`` decode (None: every length), and why.

    The default sweep on a GPU runs both decodes. ``generate`` is bound by the host there (its
    GPU busy a few percent of each step), so its speed barely follows the length, while a
    repetition of the longest one costs the most time of the sweep; ``graph`` is bound by the GPU
    and covers the length axis. So by default ``generate`` runs at the shortest length, and the
    results say so. Lengths the user gives run on both decodes.
    """
    if given or not {"generate", "graph"} <= set(decodes) or len(lengths) < 2:
        return None, []
    short = min(lengths)
    return [short], [Note("generate_one_length", f"generate ran at {short} new tokens only: bound by the host, its "
                          "speed barely follows the length; graph ran every length. Give --lengths to run both at each")]


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


def parse_warmup(text: str, sustained: bool) -> tuple[int, float | None]:
    """``--warmup``: a number of uncounted runs (requests under --load), or with --load a period
    such as ``10s`` -> (count, seconds or None)."""
    value = str(text).strip()
    if value.isdigit():
        return int(value), None
    if not sustained:
        raise UserError(f"--warmup got {text!r}; give a whole number of uncounted runs, e.g. --warmup 1.")
    m = _DURATION.match(value)
    if not m or not value[-1:].isalpha():
        raise UserError(f"--warmup got {text!r}; give a number of requests (e.g. 8) or a period with its unit (e.g. 10s).")
    return 0, parse_duration(value, "--warmup")


def parse_efforts(text: str) -> list[str]:
    """``low,high`` -> two cases; ``low:0.5,high:0.5`` -> one case whose requests draw their
    effort with these shares (normalised to sum to 1, written ``low:0.5+high:0.5``)."""
    items = parse_list(text, "--efforts")
    if not any(":" in x for x in items):
        return parse_list(text, "--efforts", EFFORTS)
    shares: dict[str, float] = {}
    for item in items:
        name, _, share = item.partition(":")
        try:
            value = float(share)
        except ValueError:
            value = -1.0
        if name not in EFFORTS or not value > 0 or not math.isfinite(value):
            raise UserError(f"--efforts got {item!r}; a mix gives every effort a positive share, e.g. --efforts low:0.5,high:0.5.")
        shares[name] = shares.get(name, 0.0) + value
    total = sum(shares.values())
    return ["+".join(f"{name}:{value / total:.4g}" for name, value in shares.items())]


def _positive(item: str, option: str, example: str) -> float:
    try:
        value = float(item)
    except ValueError:
        value = -1.0
    if not value > 0 or not math.isfinite(value):
        raise UserError(f"{option} got {item!r}; give numbers above 0, e.g. {option} {example}.")
    return value


def parse_rates(text: str) -> list[float | None]:
    """``--request-rate 1,4,inf`` -> [1.0, 4.0, None] (None: every request at once)."""
    return [None if item.lower() in ("inf", "infinity") else _positive(item, "--request-rate", "1,4,inf (requests per second)")
            for item in parse_list(text, "--request-rate")]


def parse_positive_floats(text: str, option: str) -> list[float]:
    return [_positive(item, option, "0.5,1,2") for item in parse_list(text, option)]


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
        if effort not in EFFORTS and not (cfg.backend == "openai" and all(e in EFFORTS for e, _ in _mix(effort))):
            if ":" in effort:
                raise UserError("--efforts with shares (a mix such as low:0.5,high:0.5) is for --backend openai; give plain efforts, e.g. --efforts low,high.")
            raise UserError(f"--efforts got {effort!r}; use low, medium or high.")
    if cfg.backend == "openai" and not cfg.base_url:
        raise UserError("--backend openai needs --base-url, e.g. --base-url http://127.0.0.1:8000/v1.")
    if cfg.backend == "openai" and any(b != 1 for b in cfg.batch_sizes):
        raise UserError("--backend openai sends one sequence per request; drop --batch-sizes and use --concurrency.")
    if cfg.backend != "openai" and any(c != 1 for c in cfg.concurrency):
        raise UserError("--concurrency is for --backend openai; in-process runs sweep --batch-sizes instead.")
    _validate_load(cfg)


def _mix(effort: str) -> tuple[tuple[str, float], ...]:
    try:
        return effort_mix(effort)
    except ValueError:
        return (("?", 0.0),)


def _validate_load(cfg: BenchConfig) -> None:
    """The sustained-load options: each one sentence when it does not fit the others."""
    load = cfg.load
    if load not in LOADS:
        raise UserError(f"--load got {load!r}; use one of {', '.join(LOADS)}.")
    if cfg.backend != "openai":
        for given, option in ((load != "waves", "--load"), (cfg.dataset, "--dataset"), (cfg.slo, "--slo"),
                              (cfg.num_requests is not None, "--num-requests"), (cfg.duration_s is not None, "--duration")):
            if given:
                raise UserError(f"{option} is for --backend openai (a server); in-process runs sweep --batch-sizes instead.")
        return
    open_loop = load in ("poisson", "gamma")
    if open_loop and not cfg.request_rates:
        raise UserError(f"--load {load} needs --request-rate (requests per second, e.g. --request-rate 1,4,inf).")
    if not open_loop and cfg.request_rates:
        raise UserError(f"--request-rate is for --load poisson or gamma (an open loop); --load {load} sends by --concurrency.")
    if load != "gamma" and cfg.burstiness != [1.0]:
        raise UserError("--burstiness is for --load gamma; drop it, or use --load gamma.")
    if load == "waves":
        for given, option in ((cfg.num_requests is not None, "--num-requests"), (cfg.duration_s is not None, "--duration"),
                              (cfg.warmup_s is not None, "--warmup with a duration"), (cfg.slo, "--slo")):
            if given:
                raise UserError(f"{option} is for a sustained load; add --load closed, poisson or gamma.")
        return
    if cfg.num_requests is not None and cfg.duration_s is not None:
        raise UserError("give either --num-requests or --duration per case, not both.")
    if cfg.num_requests is not None and cfg.num_requests < 1:
        raise UserError("--num-requests must be at least 1.")
    if cfg.duration_s is not None and not cfg.duration_s > 0:
        raise UserError("--duration must be longer than 0 s, e.g. --duration 60s.")
    if None in cfg.request_rates and cfg.duration_s is not None:
        raise UserError("--request-rate inf sends every request at once, so it needs --num-requests, not --duration.")
    if load == "closed" and any(c < 1 for c in cfg.concurrency):
        raise UserError("--load closed needs --concurrency of at least 1 (the number of clients).")
    if any(c > 1024 for c in cfg.concurrency):
        raise UserError("--concurrency above 1024 is not supported; lower it.")
