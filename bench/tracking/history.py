"""An embedded SQLite history of benchmark runs: the store.

One database file (default ``./gptoss-history.sqlite``, or ``$GPTOSS_HISTORY_DB``, or ``--db``)
holds:

* ``runs``: one row per results file, keyed by its ``run_id``, with the GPU, the versions
  (driver, CUDA, torch, triton, transformers, kernels, Python), the model, the git commit and an
  optional label;
* ``cases``: one row per case (and per load record, as ``load/<quant>/<attn>``) with its status
  and the weights path that ran;
* ``metrics``: one row per case metric: median, mean, stdev, p5, p95 and n.

The file is stamped as ours (``PRAGMA application_id``); a file that is not ours (another
application's SQLite database, or no database at all) is refused before anything is written to
it, and left byte for byte as it was.

Safe with several writers at once: WAL journal, a busy timeout, and every write in one
``BEGIN IMMEDIATE`` transaction (a writer takes the write lock before reading, so two writers
never deadlock on a lock upgrade). Adding a run is idempotent on its run_id. WAL needs a local
file system (not NFS).


Step changes over these runs: ``bench.tracking.steps``; rendering: ``reports.history``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from bench.results import SUMMARY_FIELDS, Results
from bench.results.trends import Point, RunRow, SeriesKey
from diagnostics.errors import UserError
from diagnostics.meta import now_iso

ENV_VAR = "GPTOSS_HISTORY_DB"
DEFAULT_DB = "gptoss-history.sqlite"
DB_SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0
APPLICATION_ID = int.from_bytes(b"GPTO", "big")  # PRAGMA application_id of our files
_SQLITE_MAGIC = b"SQLite format 3\x00"
_OUR_TABLES = {"meta", "runs", "cases", "metrics"}

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



@dataclass
class AddOutcome:
    run_id: str
    added: bool
    cases: int = 0
    metrics: int = 0
    commit: str | None = None



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
        refuse_foreign(self.path, timeout)
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
                if c.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                    c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
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
                    case_id = rec.id
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



def refuse_foreign(path: Path, timeout: float = BUSY_TIMEOUT_S) -> None:
    """Raise UserError unless ``path`` is missing, empty, an empty SQLite database or one of ours.

    Reads the header, then (for a database without our stamp: one written before the stamp
    existed, or one whose header change still sits in the WAL) looks at its tables through a
    read-only connection. Nothing is written to a file that is refused."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except FileNotFoundError:
        return
    except OSError as e:
        raise UserError(f"cannot read the history database {path} ({e.strerror or e}); check its permissions or pass another --db path.") from None
    if not header:
        return
    untouched = "it was left untouched; pass another --db path"
    if not header.startswith(_SQLITE_MAGIC) or len(header) < 100:
        raise UserError(f"{path} is not a usable gptoss history database (it is not a SQLite file); {untouched}.")
    app_id = int.from_bytes(header[68:72], "big")
    if app_id == APPLICATION_ID:
        return
    foreign = UserError(f"{path} is not a usable gptoss history database (it is another application's SQLite database); {untouched}.")
    if app_id != 0:
        raise foreign
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error as e:
        raise UserError(f"cannot open the history database {path} ({e}); check the path and its permissions.") from None
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        ours = tables >= _OUR_TABLES and conn.execute("SELECT 1 FROM meta WHERE key = 'schema'").fetchone() is not None
    except sqlite3.DatabaseError as e:
        if isinstance(e, sqlite3.OperationalError) and _is_locked(e):
            raise UserError(f"the history database {path} stayed locked for {timeout:g} s; retry when the other writer is done.") from None
        raise UserError(f"{path} is not a usable gptoss history database ({e}); {untouched}.") from None
    finally:
        conn.close()
    if tables - {"sqlite_sequence"} and not ours:
        raise foreign


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
