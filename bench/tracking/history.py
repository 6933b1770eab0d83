"""An embedded SQLite history of benchmark runs, with trends and step-change flags.

One database file (default ``./gptoss-history.sqlite``, or ``$GPTOSS_HISTORY_DB``, or ``--db``)
holds:

* ``runs``: one row per results file, keyed by its ``run_id``, with the GPU, the versions
  (driver, CUDA, torch, triton, transformers, kernels, Python), the model, the git commit and an
  optional label;
* ``cases``: one row per case (and per load record, as ``load/<quant>/<attn>``) with its status
  and the weights path that ran;
* ``metrics``: one row per case metric: median, mean, stdev, p5, p95 and n.

Safe with several writers at once: WAL journal, a busy timeout, and every write in one
``BEGIN IMMEDIATE`` transaction (a writer takes the write lock before reading, so two writers
never deadlock on a lock upgrade). Adding a run is idempotent on its run_id. WAL needs a local
file system (not NFS).

Step changes: a run's median is compared with the rolling baseline of the same series (same
model, GPU, case and metric): the median of the medians of the previous ``window`` runs (5;
at least 3 needed). It is flagged when it differs from that baseline by more than ``step_pct``
(5%) AND by more than ``STEP_SIGMAS`` (3) robust standard deviations, where the noise is the
run-to-run spread of the previous medians (1.4826 x their MAD) combined with the run's own
standard error of the median (1.2533 x stdev / sqrt(n)). So a noisy series needs a bigger jump
and a deterministic one (memory) is flagged on any change beyond the percentage. After a step the
baseline restarts at that run (a new level), so a step is flagged once, where it happened.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import statistics
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from bench.tracking.compare import fmt_value, load_id
from bench.results.errors import UserError
from bench.results import METRICS, SUMMARY_FIELDS, Results

ENV_VAR = "GPTOSS_HISTORY_DB"
DEFAULT_DB = "gptoss-history.sqlite"
DB_SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0

WINDOW = 5
MIN_BASELINE = 3
STEP_PCT = 5.0
STEP_SIGMAS = 3.0

ENV_COLUMNS = ("device", "gpu", "gpu_count", "driver", "cuda", "torch", "triton", "transformers", "kernels", "python", "platform")
assert set(ENV_COLUMNS) <= set(SUMMARY_FIELDS)

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        added_at TEXT NOT NULL,
        commit_sha TEXT,
        label TEXT,
        model_id TEXT NOT NULL,
        synthetic INTEGER NOT NULL,
        backend TEXT,
        device TEXT, gpu TEXT, gpu_count INTEGER, driver TEXT, cuda TEXT, torch TEXT, triton TEXT,
        transformers TEXT, kernels TEXT, python TEXT, platform TEXT,
        tool_version TEXT,
        complete INTEGER NOT NULL,
        source TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS cases (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        case_id TEXT NOT NULL,
        phase TEXT NOT NULL,
        status TEXT NOT NULL,
        weights_path TEXT,
        message TEXT,
        key_json TEXT,
        PRIMARY KEY (run_id, case_id)
    )""",
    """CREATE TABLE IF NOT EXISTS metrics (
        run_id TEXT NOT NULL,
        case_id TEXT NOT NULL,
        metric TEXT NOT NULL,
        median REAL, mean REAL, stdev REAL, p5 REAL, p95 REAL,
        n INTEGER NOT NULL,
        PRIMARY KEY (run_id, case_id, metric),
        FOREIGN KEY (run_id, case_id) REFERENCES cases(run_id, case_id) ON DELETE CASCADE
    )""",
    "CREATE INDEX IF NOT EXISTS metrics_by_metric ON metrics (metric, case_id)",
]


def default_db_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DB)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def detect_commit(explicit: str | None = None, cwd: str | os.PathLike | None = None) -> str | None:
    """--commit, else $GITHUB_SHA, else the git HEAD of the working directory, else None."""
    if explicit:
        return explicit.strip()
    env = os.environ.get("GITHUB_SHA")
    if env:
        return env.strip()
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else None


def run_identity(results: Results) -> str:
    """The results' run_id, or (for a file without one) a stable hash of its content."""
    if results.run_id:
        return results.run_id
    digest = hashlib.sha256(json.dumps(results.to_dict(), sort_keys=True).encode()).hexdigest()
    return f"sha256-{digest[:16]}"


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


@dataclass
class RunRow:
    id: int
    run_id: str
    created_at: str
    added_at: str
    commit: str | None
    label: str | None
    model_id: str
    synthetic: bool
    backend: str | None
    env: dict[str, Any]
    tool_version: str | None
    complete: bool
    source: str | None
    cases: int = 0

    @property
    def gpu_name(self) -> str:
        return self.env.get("gpu") or "cpu"

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id, "created_at": self.created_at, "added_at": self.added_at, "commit": self.commit,
            "label": self.label, "model": self.model_id, "synthetic": self.synthetic, "backend": self.backend,
            "env": self.env, "tool_version": self.tool_version, "complete": self.complete, "source": self.source,
            "cases": self.cases,
        }


@dataclass
class Point:
    """One run's value of one series."""

    run_id: str
    order: int  # position of the run in the time order of the whole history
    created_at: str
    commit: str | None
    label: str | None
    median: float | None
    stdev: float | None
    p5: float | None
    p95: float | None
    n: int
    weights_path: str | None


@dataclass(frozen=True)
class SeriesKey:
    model_id: str
    gpu: str
    case_id: str
    metric: str

    def label(self) -> str:
        return f"{self.case_id} @ {self.gpu}"


@dataclass
class Step:
    run_id: str
    key: SeriesKey
    value: float
    baseline: float
    pct: float | None
    sigma: float
    direction: str  # better | worse
    note: str = ""

    def describe(self) -> str:
        pct = f"{self.pct:+.1f}%" if self.pct is not None else "n/a"
        return f"{self.key.metric} {self.direction} {pct} vs rolling median {self.baseline:.4g} ({self.key.case_id})" + (
            f"; {self.note}" if self.note else ""
        )

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id, "model": self.key.model_id, "gpu": self.key.gpu, "case": self.key.case_id,
            "metric": self.key.metric, "value": self.value, "baseline": self.baseline, "pct": self.pct,
            "sigma": self.sigma, "direction": self.direction, "note": self.note,
        }


@dataclass
class AddOutcome:
    run_id: str
    added: bool
    cases: int = 0
    metrics: int = 0
    commit: str | None = None


@dataclass
class StepRule:
    window: int = WINDOW
    min_baseline: int = MIN_BASELINE
    pct: float = STEP_PCT
    sigmas: float = STEP_SIGMAS

    def describe(self) -> str:
        return (
            f"step change: median off the median of the previous {self.window} runs of the same case and GPU "
            f"(at least {self.min_baseline}) by more than {self.pct:g}% and by more than {self.sigmas:g} robust sigmas "
            f"(1.4826 MAD of those medians combined with the run's own standard error); the baseline restarts after a step"
        )


def _mad_sigma(values: Sequence[float]) -> float:
    med = statistics.median(values)
    return 1.4826 * statistics.median([abs(v - med) for v in values])


def analyze(key: SeriesKey, points: Sequence[Point], rule: StepRule | None = None) -> tuple[list[float | None], list[Step]]:
    """The rolling baseline at each point (None where too few runs precede it) and the steps.

    After a step is flagged the baseline restarts at that run (a new level): the step is
    flagged once, at the run that introduced it, not again at each run until the rolling
    median catches up.
    """
    rule = rule or StepRule()
    spec = METRICS.get(key.metric)
    higher = spec.higher_is_better if spec else True
    baselines: list[float | None] = []
    steps: list[Step] = []
    regime_start = 0
    for i, p in enumerate(points):
        prev_points = [q for q in points[regime_start:i] if q.median is not None][-rule.window:]
        prev = [q.median for q in prev_points]
        if len(prev) < rule.min_baseline:
            baselines.append(None)
            continue
        baseline = statistics.median(prev)
        baselines.append(baseline)
        if p.median is None:
            continue
        between = _mad_sigma(prev)
        own = 1.2533 * (p.stdev or 0.0) / math.sqrt(p.n) if p.n > 1 else 0.0
        sigma = math.sqrt(between**2 + own**2)
        diff = p.median - baseline
        if diff == 0:
            continue
        pct = 100.0 * diff / abs(baseline) if baseline else None
        beyond_pct = pct is None or abs(pct) > rule.pct
        beyond_noise = abs(diff) > rule.sigmas * sigma
        if beyond_pct and beyond_noise:
            direction = "better" if (diff > 0) == higher else "worse"
            prev_paths = {q.weights_path for q in prev_points if q.weights_path}
            note = ""
            if p.weights_path and prev_paths and p.weights_path not in prev_paths:
                note = f"weights path changed: {'/'.join(sorted(prev_paths))} -> {p.weights_path}"
            steps.append(Step(p.run_id, key, p.median, baseline, pct, sigma, direction, note))
            regime_start = i
    return baselines, steps


def detect_steps(key: SeriesKey, points: Sequence[Point], rule: StepRule | None = None) -> list[Step]:
    return analyze(key, points, rule)[1]


# --------------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------------


def _is_locked(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


class History:
    """A connection to one history database. Use as a context manager."""

    def __init__(self, path: str | os.PathLike | None = None, *, create: bool = True, timeout: float = BUSY_TIMEOUT_S):
        self.path = Path(path) if path else default_db_path()
        if not create and not self.path.exists():
            raise UserError(f"no history database at {self.path}; add a run first with `gptoss history add results.json` (or pass --db).")
        if self.path.is_dir():
            raise UserError(f"{self.path} is a directory; pass a database file with --db (for example --db {self.path / DEFAULT_DB}).")
        if not self.path.parent.exists():
            raise UserError(f"the folder {self.path.parent} does not exist; create it or pass another --db path.")
        self.timeout = timeout
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise UserError(f"cannot open the history database {self.path} ({e}); check the path and its permissions.") from None
        try:
            self._setup()
        except UserError:
            self.conn.close()
            raise
        except sqlite3.DatabaseError as e:
            self.conn.close()
            if isinstance(e, sqlite3.OperationalError) and _is_locked(e):
                raise UserError(f"the history database {self.path} stayed locked for {timeout:g} s; retry when the other writer is done.") from None
            raise UserError(
                f"{self.path} is not a usable gptoss history database ({e}); pass another --db path or move that file away."
            ) from None

    # ---- connection ------------------------------------------------------------------------

    def _retry(self, fn):
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as e:
                if not _is_locked(e):
                    raise
                if time.monotonic() > deadline:
                    raise UserError(
                        f"the history database {self.path} stayed locked for {self.timeout:g} s; "
                        "retry when the other writer is done."
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _setup(self) -> None:
        c = self.conn
        c.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        # Switching the journal mode needs a moment alone with the file; retry while another
        # process holds it (journal_mode does not always go through the busy handler).
        mode = self._retry(lambda: c.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        if str(mode).lower() != "wal":  # pragma: no cover - e.g. a file system without shared memory
            raise sqlite3.OperationalError(f"cannot switch to WAL journal (got {mode})")
        c.execute("PRAGMA synchronous = NORMAL")
        c.execute("PRAGMA foreign_keys = ON")

        def create():
            with self.transaction():
                for stmt in _SCHEMA:
                    c.execute(stmt)
                row = c.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if row is None:
                    c.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(DB_SCHEMA_VERSION),))
                elif int(row[0]) > DB_SCHEMA_VERSION:
                    raise UserError(
                        f"{self.path} was written by a newer gptoss-harness (history schema {row[0]}); "
                        "upgrade with `pip install -U gptoss-harness`."
                    )

        self._retry(create)

    def transaction(self):
        return _Transaction(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    # ---- writing ---------------------------------------------------------------------------

    def add(self, results: Results, *, commit: str | None = None, label: str | None = None, source: str | None = None) -> AddOutcome:
        """Add one run; nothing happens when its run_id is already stored."""
        run_id = run_identity(results)
        env = results.env_summary
        outcome = AddOutcome(run_id=run_id, added=False, commit=commit)

        def write():
            outcome.added, outcome.cases, outcome.metrics = False, 0, 0  # a retried transaction starts over
            with self.transaction():
                c = self.conn
                cur = c.execute(
                    "INSERT OR IGNORE INTO runs (run_id, created_at, added_at, commit_sha, label, model_id, synthetic, backend, "
                    + ", ".join(ENV_COLUMNS)
                    + ", tool_version, complete, source) VALUES ("
                    + ", ".join("?" * (8 + len(ENV_COLUMNS) + 3))
                    + ")",
                    (
                        run_id, results.created_at or now_iso(), now_iso(), commit, label, results.model.id,
                        int(bool(results.model.synthetic)), results.backend.get("kind"),
                        *(env.get(k) for k in ENV_COLUMNS),
                        results.tool_version, int(bool(results.complete)), source,
                    ),
                )
                if cur.rowcount == 0:
                    return
                outcome.added = True
                for case in results.cases:
                    c.execute(
                        "INSERT INTO cases (run_id, case_id, phase, status, weights_path, message, key_json) VALUES (?, ?, 'case', ?, ?, ?, ?)",
                        (run_id, case.key.id, case.status, case.weights_path, case.message, json.dumps(case.key.to_dict(), sort_keys=True)),
                    )
                    outcome.cases += 1
                    for name, stat in case.metrics.items():
                        if not stat.n:
                            continue
                        c.execute(
                            "INSERT INTO metrics (run_id, case_id, metric, median, mean, stdev, p5, p95, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (run_id, case.key.id, name, stat.median, stat.mean, stat.stdev, stat.p5, stat.p95, stat.n),
                        )
                        outcome.metrics += 1
                seen = set()
                for rec in results.loads:
                    case_id = load_id(rec)
                    if case_id in seen:
                        continue
                    seen.add(case_id)
                    c.execute(
                        "INSERT INTO cases (run_id, case_id, phase, status, weights_path, message, key_json) VALUES (?, ?, 'load', ?, ?, ?, ?)",
                        (run_id, case_id, rec.status, rec.weights_path, rec.message, json.dumps({"quant": rec.quant, "attn": rec.attn})),
                    )
                    outcome.cases += 1
                    for name, value in rec.metrics.items():
                        if value is None:
                            continue
                        c.execute(
                            "INSERT INTO metrics (run_id, case_id, metric, median, mean, stdev, p5, p95, n) VALUES (?, ?, ?, ?, ?, 0, ?, ?, 1)",
                            (run_id, case_id, name, value, value, value, value),
                        )
                        outcome.metrics += 1

        self._retry(write)
        return outcome

    # ---- reading ---------------------------------------------------------------------------

    _RUN_COLS = ("id, run_id, created_at, added_at, commit_sha, label, model_id, synthetic, backend, "
                 + ", ".join(ENV_COLUMNS) + ", tool_version, complete, source")

    def _run_row(self, row: tuple) -> RunRow:
        env = dict(zip(ENV_COLUMNS, row[9:9 + len(ENV_COLUMNS)]))
        rest = row[9 + len(ENV_COLUMNS):]
        return RunRow(id=row[0], run_id=row[1], created_at=row[2], added_at=row[3], commit=row[4], label=row[5],
                      model_id=row[6], synthetic=bool(row[7]), backend=row[8], env=env, tool_version=rest[0],
                      complete=bool(rest[1]), source=rest[2], cases=rest[3] if len(rest) > 3 else 0)

    def runs(self, *, gpu: str | None = None, model: str | None = None) -> list[RunRow]:
        """All runs, oldest first (by the time the run was made, then by the order added)."""
        where, args = [], []
        if gpu:
            where.append("COALESCE(r.gpu, 'cpu') = ?")
            args.append(gpu)
        if model:
            where.append("r.model_id = ?")
            args.append(model)
        sql = (
            f"SELECT {', '.join('r.' + x.strip() for x in self._RUN_COLS.split(','))}, "
            "(SELECT COUNT(*) FROM cases c WHERE c.run_id = r.run_id AND c.phase = 'case') "
            "FROM runs r" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.created_at, r.id"
        )
        return [self._run_row(r) for r in self.conn.execute(sql, args)]

    def run(self, ref: str) -> RunRow:
        """A run by its id, a unique prefix of it, or `latest`."""
        runs = self.runs()
        if not runs:
            raise UserError(f"the history {self.path} holds no runs yet; add one with `gptoss history add results.json`.")
        if ref == "latest":
            return runs[-1]
        exact = [r for r in runs if r.run_id == ref]
        if exact:
            return exact[0]
        matches = [r for r in runs if r.run_id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise UserError(f"no run {ref!r} in {self.path}; `gptoss history list` shows the run ids.")
        raise UserError(f"{ref!r} matches {len(matches)} runs ({', '.join(r.run_id for r in matches[:5])}); give more of the run id.")

    def case_metrics(self, run_id: str) -> list[dict]:
        rows = self.conn.execute(
            "SELECT m.case_id, c.phase, c.status, c.weights_path, m.metric, m.median, m.mean, m.stdev, m.p5, m.p95, m.n "
            "FROM metrics m JOIN cases c ON c.run_id = m.run_id AND c.case_id = m.case_id WHERE m.run_id = ? "
            "ORDER BY c.phase DESC, m.case_id, m.metric",
            (run_id,),
        ).fetchall()
        names = ("case_id", "phase", "status", "weights_path", "metric", "median", "mean", "stdev", "p5", "p95", "n")
        return [dict(zip(names, r)) for r in rows]

    def failed_cases(self, run_id: str) -> list[tuple[str, str, str | None]]:
        return list(self.conn.execute("SELECT case_id, status, message FROM cases WHERE run_id = ? AND status != 'ok' ORDER BY case_id", (run_id,)))

    def series(
        self,
        metrics: Iterable[str] | None = None,
        *,
        cases: Sequence[str] | None = None,
        gpu: str | None = None,
        model: str | None = None,
    ) -> dict[SeriesKey, list[Point]]:
        runs = self.runs(gpu=gpu, model=model)
        order = {r.run_id: i for i, r in enumerate(runs)}
        info = {r.run_id: r for r in runs}
        where, args = ["c.status = 'ok'"], []
        metrics = list(metrics) if metrics is not None else None
        if metrics:
            where.append(f"m.metric IN ({', '.join('?' * len(metrics))})")
            args.extend(metrics)
        if cases:
            where.append(f"m.case_id IN ({', '.join('?' * len(cases))})")
            args.extend(cases)
        rows = self.conn.execute(
            "SELECT m.run_id, m.case_id, m.metric, m.median, m.stdev, m.p5, m.p95, m.n, c.weights_path "
            "FROM metrics m JOIN cases c ON c.run_id = m.run_id AND c.case_id = m.case_id WHERE " + " AND ".join(where),
            args,
        ).fetchall()
        out: dict[SeriesKey, list[Point]] = {}
        for run_id, case_id, metric, median, stdev, p5, p95, n, wp in rows:
            r = info.get(run_id)
            if r is None:
                continue
            key = SeriesKey(r.model_id, r.gpu_name, case_id, metric)
            out.setdefault(key, []).append(
                Point(run_id, order[run_id], r.created_at, r.commit, r.label, median, stdev, p5, p95, n, wp)
            )
        for pts in out.values():
            pts.sort(key=lambda p: p.order)
        return dict(sorted(out.items(), key=lambda kv: (kv[0].metric, kv[0].model_id, kv[0].gpu, kv[0].case_id)))

    def steps(self, rule: StepRule | None = None, **filters) -> list[Step]:
        out: list[Step] = []
        for key, pts in self.series(**filters).items():
            out.extend(detect_steps(key, pts, rule))
        return out


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
        return False


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def short(sha: str | None, n: int = 10) -> str:
    return sha[:n] if sha else "-"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(str(r[i])) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines) + "\n"


def _steps_cell(steps: list[Step]) -> str:
    if not steps:
        return "-"
    worse = sum(1 for s in steps if s.direction == "worse")
    better = len(steps) - worse
    parts = []
    if worse:
        parts.append(f"STEP {worse} worse")
    if better:
        parts.append(f"{better} better")
    first = sorted(steps, key=lambda s: (s.direction != "worse", -abs(s.pct or 0)))[0]
    pct = f"{first.pct:+.1f}%" if first.pct is not None else ""
    return ", ".join(parts) + f" ({first.key.metric} {pct} {first.key.case_id})"


def render_list(runs: list[RunRow], steps: list[Step]) -> str:
    by_run: dict[str, list[Step]] = {}
    for s in steps:
        by_run.setdefault(s.run_id, []).append(s)
    rows = [
        [r.run_id, r.created_at, short(r.commit), r.label or "-", r.model_id, r.gpu_name, r.env.get("torch") or "-",
         r.env.get("transformers") or "-", str(r.cases), _steps_cell(by_run.get(r.run_id, []))]
        for r in runs
    ]
    return _table(["run", "created", "commit", "label", "model", "gpu", "torch", "transformers", "cases", "steps"], rows)


def render_show(h: History, run: RunRow, rule: StepRule, metrics: Sequence[str] | None = None) -> str:
    lines = [f"run {run.run_id}"]
    lines.append(f"  created {run.created_at}, added {run.added_at}, commit {run.commit or '-'}, label {run.label or '-'}")
    lines.append(f"  model {run.model_id}{' (synthetic weights)' if run.synthetic else ''}, backend {run.backend or '-'}, tool {run.tool_version or '-'}")
    lines.append("  env " + ", ".join(f"{k} {run.env.get(k) if run.env.get(k) is not None else '-'}" for k in ENV_COLUMNS))
    if run.source:
        lines.append(f"  source {run.source}")
    # One pass over the run's series gives both its baselines and the steps it introduced.
    baselines: dict[tuple[str, str], float] = {}
    steps: dict[tuple[str, str], Step] = {}
    for key, pts in h.series(metrics, gpu=run.gpu_name, model=run.model_id).items():
        bases, found = analyze(key, pts, rule)
        for p, b in zip(pts, bases):
            if p.run_id == run.run_id and b is not None:
                baselines[(key.case_id, key.metric)] = b
        steps.update(((key.case_id, key.metric), s) for s in found if s.run_id == run.run_id)
    rows = []
    for m in h.case_metrics(run.run_id):
        if metrics and m["metric"] not in metrics:
            continue
        unit = METRICS[m["metric"]].unit if m["metric"] in METRICS else ""
        base = baselines.get((m["case_id"], m["metric"]))
        step = steps.get((m["case_id"], m["metric"]))
        change = "-"
        if base is not None and m["median"] is not None and base != 0:
            change = f"{100 * (m['median'] - base) / abs(base):+.1f}%"
        flag = f"STEP {step.direction}" + (f" ({step.note})" if step.note else "") if step else ""
        rows.append([m["case_id"], m["metric"], fmt_value(m["median"], unit), str(m["n"]),
                     fmt_value(m["stdev"], unit) if m["n"] > 1 else "-", fmt_value(base, unit) if base is not None else "-", change, flag])
    lines.append("")
    lines.append(_table(["case", "metric", "median", "n", "stdev", "baseline", "change", "flag"], rows).rstrip())
    failed = h.failed_cases(run.run_id)
    if failed:
        lines.append("")
        lines.append("cases that did not run:")
        for case_id, status, msg in failed:
            lines.append(f"  {case_id}: {status}{': ' + msg if msg else ''}")
    lines.append("")
    lines.append(f"baseline = rolling median; {rule.describe()}")
    return "\n".join(lines) + "\n"


def plot(
    h: History,
    metrics: Sequence[str],
    out: str | os.PathLike,
    *,
    cases: Sequence[str] | None = None,
    gpu: str | None = None,
    model: str | None = None,
    rule: StepRule | None = None,
) -> tuple[Path, int, list[Step]]:
    """Draw the trend of each metric (one panel per metric), step changes marked. Returns
    (path, number of series drawn, steps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rule = rule or StepRule()
    runs = h.runs(gpu=gpu, model=model)
    series = h.series(metrics, cases=cases, gpu=gpu, model=model)
    if not series:
        what = ", ".join(metrics)
        where = f" for case {', '.join(cases)}" if cases else ""
        raise UserError(f"the history {h.path} has no values of {what}{where}; check --metric/--case/--gpu against `gptoss history show latest`.")
    ticks = [r.label or short(r.commit, 7) if (r.label or r.commit) else r.run_id[:10] for r in runs]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(max(7.0, 0.45 * len(runs) + 3), 3.6 * len(metrics)), squeeze=False)
    all_steps: list[Step] = []
    drawn = 0
    for ax, metric in zip(axes[:, 0], metrics):
        spec = METRICS[metric]
        scale, unit = (float(1 << 30), "GiB") if spec.unit == "bytes" else (1.0, spec.unit)
        items = [(k, p) for k, p in series.items() if k.metric == metric]
        if not items:
            ax.text(0.5, 0.5, f"no data for {metric}", ha="center", va="center", transform=ax.transAxes)
            continue
        for key, pts in items:
            xs = [p.order for p in pts if p.median is not None]
            ys = [p.median / scale for p in pts if p.median is not None]
            lo = [(p.median - p.p5) / scale if p.p5 is not None else 0 for p in pts if p.median is not None]
            hi = [(p.p95 - p.median) / scale if p.p95 is not None else 0 for p in pts if p.median is not None]
            label = key.label() if len({k.model_id for k, _ in items}) == 1 else f"{key.model_id}: {key.label()}"
            line = ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=4, capsize=2, label=label)
            color = line[0].get_color()
            bases, steps = analyze(key, pts, rule)
            bx = [p.order for p, b in zip(pts, bases) if b is not None]
            by = [b / scale for b in bases if b is not None]
            if bx:
                ax.plot(bx, by, ls="--", lw=1, color=color, alpha=0.6)
            all_steps.extend(steps)
            pos = {p.run_id: p.order for p in pts}
            for s in steps:
                c = "tab:red" if s.direction == "worse" else "tab:green"
                ax.scatter([pos[s.run_id]], [s.value / scale], s=140, facecolors="none", edgecolors=c, linewidths=2, zorder=5)
                ax.annotate(f"{s.direction} {s.pct:+.1f}%" if s.pct is not None else s.direction, (pos[s.run_id], s.value / scale),
                            textcoords="offset points", xytext=(4, 8), fontsize=8, color=c)
            drawn += 1
        arrow = "higher is better" if spec.higher_is_better else "lower is better"
        ax.set_title(f"{metric} ({unit}, {arrow})", fontsize=10)
        ax.set_ylabel(unit)
        ax.set_xlabel("run (label, else commit, else run id), oldest first", fontsize=8)
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels(ticks, rotation=45, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"bars: p5-p95 of each run; dashed: rolling baseline (median of the previous {rule.window} runs); "
                 f"circles: step changes", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    if out.parent and not out.parent.exists():
        raise UserError(f"the folder {out.parent} does not exist; create it or pass another --out path.")
    try:
        fig.savefig(out, dpi=110)
    except OSError as e:
        raise UserError(f"cannot write {out} ({e.strerror or e}); pass another --out path.") from None
    finally:
        plt.close(fig)
    return out, drawn, all_steps
