"""gptoss history: storage, idempotency, concurrency, step changes, list/show/plot."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner

from bench import results as R
from bench.cli import main
from bench.results.errors import UserError
from bench.results.trends import Point, SeriesKey, StepRule
from bench.tracking.history import History, default_db_path, detect_commit, run_identity
from bench.tracking.steps import analyze
from tests.factories import DECODE_BASE, KEY, KEY2, make_results, save_results

METRICS_PER_RUN = 3  # decode_tok_s on KEY, load_s and load_peak_bytes on the load record


def invoke(*args: str, env: dict | None = None):
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def _run(i: int, factor: float = 1.0, **kw) -> R.Results:
    return make_results({KEY: {"decode_tok_s": [factor * (x + (i % 3) * 0.1) for x in DECODE_BASE]}},
                        run_id=f"run-{i:02d}", created_at=f"2025-01-{i + 1:02d}T00:00:00+00:00", **kw)


# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------


def test_add_stores_run_cases_and_metrics_and_is_idempotent(tmp_path):
    db = tmp_path / "h.sqlite"
    with History(db) as h:
        out = h.add(_run(0), commit="abc123", label="main", source="r.json")
        assert out.added and out.cases == 2 and out.metrics == 3
        again = h.add(_run(0), commit="other")
        assert not again.added and again.cases == 0
        runs = h.runs()
        assert [r.run_id for r in runs] == ["run-00"] and runs[0].commit == "abc123" and runs[0].label == "main"
        assert runs[0].env["gpu"] == "NVIDIA H100 80GB HBM3" and runs[0].env["torch"] == "2.11.0" and runs[0].cases == 1
        rows = {(m["case_id"], m["metric"]): m for m in h.case_metrics("run-00")}
        assert set(rows) == {(KEY.id, "decode_tok_s"), ("load/auto/auto", "load_s"), ("load/auto/auto", "load_peak_bytes")}
        assert rows[(KEY.id, "decode_tok_s")]["n"] == 10 and rows[("load/auto/auto", "load_s")]["median"] == 10.0
        assert h.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert h.integrity_check() == "ok"


def test_cli_add_twice(tmp_path):
    p = save_results(tmp_path, "r.json", _run(0))
    db = str(tmp_path / "h.sqlite")
    r = invoke("history", "add", p, "--db", db, "--commit", "deadbeef", "--label", "nightly")
    assert r.exit_code == 0 and "added run run-00" in r.stdout and "deadbeef" in r.stdout
    r = invoke("history", "add", p, "--db", db)
    assert r.exit_code == 0 and "already in" in r.stdout
    with History(db) as h:
        assert len(h.runs()) == 1 and h.runs()[0].label == "nightly"


def test_failed_cases_stored_and_shown(tmp_path):
    res = make_results({KEY: {"decode_tok_s": DECODE_BASE}, KEY2: {}}, statuses={KEY2: "oom"})
    db = str(tmp_path / "h.sqlite")
    with History(db) as h:
        h.add(res)
        assert h.failed_cases("run-base") == [(KEY2.id, "oom", "CUDA out of memory")]
    r = invoke("history", "show", "latest", "--db", db)
    assert "cases that did not run" in r.stdout and "oom: CUDA out of memory" in r.stdout


def test_run_without_id_gets_a_stable_content_id():
    a, b = _run(0), _run(0)
    a.run_id = b.run_id = ""
    assert run_identity(a) == run_identity(b) and run_identity(a).startswith("sha256-")
    b.cases[0].metrics["decode_tok_s"].median = 1.0
    assert run_identity(a) != run_identity(b)


def test_commit_detection(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    assert detect_commit("  abc ") == "abc"
    assert detect_commit(None, cwd=tmp_path) is None  # not a git checkout
    monkeypatch.setenv("GITHUB_SHA", "f" * 40)
    assert detect_commit(None, cwd=tmp_path) == "f" * 40
    assert detect_commit("given", cwd=tmp_path) == "given"
    monkeypatch.delenv("GITHUB_SHA")
    here = os.path.dirname(__file__)
    git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True)
    expected = git.stdout.strip() if git.returncode == 0 else None
    assert detect_commit(None, cwd=here) == expected


def test_default_db_path(monkeypatch, tmp_path):
    monkeypatch.delenv("GPTOSS_HISTORY_DB", raising=False)
    assert str(default_db_path()) == "gptoss-history.sqlite"
    monkeypatch.setenv("GPTOSS_HISTORY_DB", str(tmp_path / "x.sqlite"))
    assert default_db_path() == tmp_path / "x.sqlite"
    p = save_results(tmp_path, "r.json", _run(0))
    r = invoke("history", "add", p)
    assert r.exit_code == 0 and (tmp_path / "x.sqlite").exists()


def test_readers_do_not_create_a_db(tmp_path):
    db = tmp_path / "none.sqlite"
    r = invoke("history", "list", "--db", str(db))
    assert r.exit_code == 2 and "no history database" in r.stderr and not db.exists()


def test_not_a_database_is_a_clean_error(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_text("this is not sqlite" * 100)
    r = invoke("history", "list", "--db", str(bad))
    assert r.exit_code == 2 and "not a usable gptoss history database" in r.stderr
    assert "Traceback" not in r.output


def test_db_in_missing_folder_or_a_directory(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        History(tmp_path / "nope" / "h.sqlite")
    with pytest.raises(UserError, match="is a directory"):
        History(tmp_path)


def test_newer_db_schema_refused(tmp_path):
    db = tmp_path / "h.sqlite"
    History(db).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    con.commit()
    con.close()
    with pytest.raises(UserError, match="newer gptoss-harness"):
        History(db)


# ---------------------------------------------------------------------------------------------
# Two writers at once
# ---------------------------------------------------------------------------------------------

N_PER_WRITER = 12


def _writer(db: str, first: int, barrier) -> None:
    barrier.wait(timeout=60)
    for i in range(first, first + N_PER_WRITER):
        with History(db) as h:  # a fresh connection each time: schema set-up races too
            h.add(_run(i), commit=f"{i:040x}")
    with History(db) as h:  # both add one run with the same id: stored once
        h.add(_run(99))


def test_two_processes_writing_at_once(tmp_path):
    db = str(tmp_path / "h.sqlite")
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(db, first, barrier)) for first in (0, 50)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with History(db) as h:
        ids = {r.run_id for r in h.runs()}
        assert ids == {f"run-{i:02d}" for i in [*range(N_PER_WRITER), *range(50, 50 + N_PER_WRITER), 99]}
        n_metrics = h.conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        assert n_metrics == len(ids) * METRICS_PER_RUN
        assert h.integrity_check() == "ok"
        assert h.conn.execute("PRAGMA foreign_key_check").fetchall() == []


# ---------------------------------------------------------------------------------------------
# Step changes
# ---------------------------------------------------------------------------------------------


def _points(values, stdev=0.5, n=10, paths=None):
    return [Point(f"r{i}", i, "", None, None, v, stdev, v, v, n, (paths or {}).get(i, "mxfp4")) for i, v in enumerate(values)]


DEC = SeriesKey("m", "gpu", "case", "decode_tok_s")
MEM = SeriesKey("m", "gpu", "case", "peak_alloc_bytes")


def test_steady_series_has_no_step():
    _, steps = analyze(DEC, _points([100, 100.4, 99.7, 100.2, 99.9, 100.3, 99.8, 100.1]))
    assert steps == []


def test_step_down_flagged_once_where_it_happened():
    bases, steps = analyze(DEC, _points([100, 100.4, 99.7, 100.2, 99.9, 85, 85.3, 84.8, 85.1]))
    assert [s.run_id for s in steps] == ["r5"]
    s = steps[0]
    assert s.direction == "worse" and s.pct == pytest.approx(-15, abs=0.3) and s.baseline == pytest.approx(100, abs=0.3)
    assert bases[:3] == [None, None, None] and bases[3] is not None
    # The baseline restarted at the step: it follows the new level.
    assert bases[-1] == pytest.approx(85.05, abs=0.2)


def test_memory_growth_is_worse_and_speedup_is_better():
    _, steps = analyze(MEM, _points([1e9, 1e9, 1e9, 1e9, 1.2e9], stdev=0))
    assert len(steps) == 1 and steps[0].direction == "worse"
    _, steps = analyze(DEC, _points([100, 100, 100, 120]))
    assert len(steps) == 1 and steps[0].direction == "better"


def test_noisy_series_needs_more_than_the_percentage():
    noisy = [100, 90, 110, 95, 105, 92]  # run-to-run spread ~10%: an 8% dip is noise
    _, steps = analyze(DEC, _points(noisy, stdev=8))
    assert steps == []
    # The same 8% dip on a quiet series is a step.
    _, steps = analyze(DEC, _points([100, 100.2, 99.9, 100.1, 99.8, 92]))
    assert [s.run_id for s in steps] == ["r5"]


def test_small_change_on_quiet_series_below_percentage_is_not_a_step():
    _, steps = analyze(DEC, _points([100, 100.01, 99.99, 100, 97], stdev=0.001))
    assert steps == []  # 3% < 5%, however significant


def test_too_few_previous_runs_never_flags():
    _, steps = analyze(DEC, _points([100, 100, 50]))
    assert steps == []
    _, steps = analyze(DEC, _points([100, 100, 100, 50]), StepRule(min_baseline=4))
    assert steps == []


def test_weights_path_change_noted():
    _, steps = analyze(DEC, _points([100, 100, 100, 100, 40], paths={4: "bf16"}))
    assert "weights path changed: mxfp4 -> bf16" in steps[0].note


# ---------------------------------------------------------------------------------------------
# list / show / plot
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def stepped_db(tmp_path):
    db = str(tmp_path / "h.sqlite")
    with History(db) as h:
        for i in range(8):
            h.add(_run(i, factor=0.8 if i >= 6 else 1.0), commit=f"{i:040x}", label=f"L{i}")
        h.add(_run(20, env={"gpu": "Tesla T4"}, factor=0.3))  # another GPU: its own series
    return db


def test_list_flags_the_step(stepped_db):
    r = invoke("history", "list", "--db", stepped_db)
    assert r.exit_code == 0
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:] if line.startswith("run-")}
    assert "STEP 1 worse" in lines["run-06"] and "decode_tok_s -20" in lines["run-06"]
    assert lines["run-07"].rstrip().endswith("-") and lines["run-05"].rstrip().endswith("-")
    assert "Tesla T4" in lines["run-20"] and lines["run-20"].rstrip().endswith("-")
    r = invoke("history", "list", "--db", stepped_db, "--gpu", "Tesla T4", "--format", "json")
    doc = json.loads(r.stdout)
    assert [x["run_id"] for x in doc["runs"]] == ["run-20"] and doc["steps"] == []
    r = invoke("history", "list", "--db", stepped_db, "--limit", "2", "--format", "json")
    doc = json.loads(r.stdout)
    assert [x["run_id"] for x in doc["runs"]] == ["run-07", "run-20"]


def test_list_step_pct_option(stepped_db):
    doc = json.loads(invoke("history", "list", "--db", stepped_db, "--format", "json", "--step-pct", "30").stdout)
    assert doc["steps"] == []


def test_show_run_against_baseline(stepped_db):
    r = invoke("history", "show", "run-06", "--db", stepped_db)
    assert r.exit_code == 0
    assert "commit 0000000000000000000000000000000000000006" in r.stdout and "label L6" in r.stdout
    row = [line for line in r.stdout.splitlines() if line.startswith(KEY.id) and "decode_tok_s" in line][0]
    assert "STEP worse" in row and "-20" in row
    r = invoke("history", "show", "run-06", "--db", stepped_db, "--format", "json", "--metric", "decode_tok_s")
    doc = json.loads(r.stdout)
    assert doc["run"]["label"] == "L6" and {m["metric"] for m in doc["metrics"]} == {"decode_tok_s"}
    assert doc["steps"][0]["direction"] == "worse"


def test_show_run_refs(stepped_db):
    assert "run run-20" in invoke("history", "show", "--db", stepped_db).stdout  # latest by default
    assert "run run-03" in invoke("history", "show", "run-03", "--db", stepped_db).stdout
    r = invoke("history", "show", "run-0", "--db", stepped_db)
    assert r.exit_code == 2 and "matches 8 runs" in r.stderr
    r = invoke("history", "show", "zzz", "--db", stepped_db)
    assert r.exit_code == 2 and "no run 'zzz'" in r.stderr
    r = invoke("history", "show", "latest", "--db", stepped_db, "--metric", "bogus")
    assert r.exit_code == 2 and "unknown metric" in r.stderr


def test_show_on_empty_db(tmp_path):
    db = tmp_path / "h.sqlite"
    History(db).close()
    r = invoke("history", "show", "--db", str(db))
    assert r.exit_code == 2 and "holds no runs" in r.stderr


def test_plot_writes_png(stepped_db, tmp_path):
    out = tmp_path / "trend.png"
    r = invoke("history", "plot", "--db", stepped_db, "--metric", "decode_tok_s", "--metric", "load_s", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "1 step change(s), 1 worse" in r.stdout and "4 series" in r.stdout  # 2 metrics x 2 GPUs


def test_plot_filters_and_errors(stepped_db, tmp_path):
    out = tmp_path / "t.png"
    r = invoke("history", "plot", "--db", stepped_db, "--case", KEY.id, "--gpu", "Tesla T4", "--out", str(out))
    assert r.exit_code == 0 and "1 series" in r.stdout
    r = invoke("history", "plot", "--db", stepped_db, "--metric", "ttft_s", "--out", str(out))
    assert r.exit_code == 2 and "no values of ttft_s" in r.stderr
    r = invoke("history", "plot", "--db", stepped_db, "--metric", "speed", "--out", str(out))
    assert r.exit_code == 2 and "unknown metric 'speed'" in r.stderr
    r = invoke("history", "plot", "--db", stepped_db, "--out", str(tmp_path / "no" / "t.png"))
    assert r.exit_code == 2 and "does not exist" in r.stderr


def test_plot_unwritable_out_is_a_usage_error(stepped_db, tmp_path):
    (tmp_path / "dir.png").mkdir()
    r = invoke("history", "plot", "--db", stepped_db, "--out", str(tmp_path / "dir.png"))
    assert r.exit_code == 2 and "is a directory" in r.stderr and "Traceback" not in r.output


def test_help_has_examples():
    for sub in ([], ["add"], ["list"], ["show"], ["plot"]):
        r = invoke("history", *sub, "--help")
        assert r.exit_code == 0 and "Example:" in r.stdout
