"""Output folders a run cannot use: read-only, /proc/self, a disk that fills up mid-write. Each
ends in one sentence (exit 2 for the place chosen, 1 for a full disk), no traceback, and what
was already saved stays intact."""

from __future__ import annotations

import pytest

from bench import results as R
from bench.models import synthetic as syn
from tests.factories import make_results
from tests.tiny_runs import cache_dir, invoke, no_environment_snapshot  # noqa: F401 (fixtures)
from tests.fs_faults import FullDisk, read_only

SMALL_SWEEP = ["--model", "synthetic:tiny", "--device", "cpu", "--efforts", "low,high", "--lengths", "4",
               "--reps", "1", "--warmup", "0", "-q"]


def one_sentence(r, code: int = 2) -> str:
    """The last stderr line, after checking the command ended cleanly with ``code``."""
    assert r.exit_code == code, r.output
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), r.stderr
    return last


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---- read-only places ------------------------------------------------------------------------


def test_bench_into_a_read_only_folder(tmp_path, monkeypatch, cache_dir):
    out = tmp_path / "ro"
    out.mkdir()
    read_only(monkeypatch, out)
    line = one_sentence(invoke("bench", *SMALL_SWEEP, "--cache-dir", cache_dir, "--out", out))
    assert f"cannot write {out}" in line and "--out" in line
    assert leftovers(out) == []


def test_bench_into_a_new_folder_on_a_read_only_mount(tmp_path, monkeypatch, cache_dir):
    read_only(monkeypatch, tmp_path)
    line = one_sentence(invoke("bench", *SMALL_SWEEP, "--cache-dir", cache_dir, "--out", tmp_path / "new" / "run"))
    assert "cannot write" in line and "--out" in line


@pytest.mark.parametrize("command", ["bench", "report", "synthesize"])
def test_proc_self_as_the_output_folder(tmp_path, command, cache_dir):
    if command == "bench":
        args = ["bench", *SMALL_SWEEP, "--cache-dir", cache_dir, "--out", "/proc/self"]
    elif command == "report":
        R.save(make_results(), tmp_path / "results.json")
        args = ["report", tmp_path / "results.json", "--out", "/proc/self"]
    else:
        args = ["synthesize", "tiny", "--out", "/proc/self/tiny", "-q"]
    line = one_sentence(invoke(*args))
    assert "cannot write /proc/self" in line


def test_an_output_path_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("mine")
    with pytest.raises(R.UserError, match="is a file, not a folder; pass --out"):
        R.writable_folder(f, "pass --out a folder you can write to")
    assert f.read_text() == "mine"


def test_report_into_a_read_only_folder_says_one_thing_before_any_plot(tmp_path, monkeypatch):
    R.save(make_results(), tmp_path / "results.json")
    out = tmp_path / "ro"
    out.mkdir()
    read_only(monkeypatch, out)
    r = invoke("report", tmp_path / "results.json", "--out", out)
    line = one_sentence(r)
    assert f"cannot write {out}" in line
    assert r.stderr.strip().splitlines() == [line]  # no plot warning, no matplotlib traceback before it
    assert leftovers(out) == []


@pytest.mark.parametrize("how", ["synthesize --out", "synthesize --cache-dir", "bench --cache-dir"])
def test_synthetic_checkpoint_on_a_read_only_mount(tmp_path, monkeypatch, how):
    ro = tmp_path / "ro"
    ro.mkdir()
    read_only(monkeypatch, ro)
    if how == "synthesize --out":
        args = ["synthesize", "tiny", "--out", ro / "tiny", "-q"]
    elif how == "synthesize --cache-dir":
        args = ["synthesize", "tiny", "--cache-dir", ro, "-q"]
    else:
        args = ["bench", *SMALL_SWEEP, "--cache-dir", ro, "--out", tmp_path / "out"]
    line = one_sentence(invoke(*args))
    assert "cannot write" in line and "--cache-dir" in line
    assert leftovers(ro) == []
    assert not (tmp_path / "out" / "results.json").exists()


def test_a_valid_checkpoint_on_a_read_only_mount_is_still_used(tmp_path, monkeypatch, cache_dir):
    read_only(monkeypatch, cache_dir)
    r = invoke("synthesize", "tiny", "--cache-dir", cache_dir, "-q")
    assert r.exit_code == 0, r.output
    assert "reused" in r.stderr


# ---- a disk that fills up mid-write ----------------------------------------------------------


@pytest.mark.parametrize("pattern", ["tokenizer.json", "*.safetensors", "manifest.json"])
def test_synthesize_on_a_full_disk_leaves_nothing_half_written(tmp_path, monkeypatch, pattern):
    cache = tmp_path / "cache"
    kept = syn.ensure("tiny", seed=0, cache_dir=cache, progress=False)  # already saved: must survive
    disk = FullDisk(monkeypatch, cache, pattern=pattern, free_bytes=100)
    line = one_sentence(invoke("synthesize", "tiny", "--seed", "1", "--cache-dir", cache, "-q"), code=1)
    assert disk.failures == 1
    assert "is full" in line and "free some space" in line
    assert leftovers(cache / "synthetic") == [kept.path.name]  # no temporary folder, no half checkpoint
    assert syn.check_folder(kept.path, "tiny", 0) is None


def test_a_full_disk_mid_sweep_keeps_every_case_saved_before(tmp_path, monkeypatch, cache_dir):
    out = tmp_path / "out"
    disk = FullDisk(monkeypatch, out, pattern=".results-*", spare_files=2, free_bytes=200)
    line = one_sentence(invoke("bench", *SMALL_SWEEP, "--cache-dir", cache_dir, "--out", out), code=1)
    assert disk.failures >= 1
    assert "is full" in line and "--resume" in line
    saved = R.load(out / "results.json")  # the last good write: the load and the first case
    assert [c.key.effort for c in saved.cases] == ["low"] and saved.loads[0].status == "ok"
    assert not [n for n in leftovers(out) if n.startswith(".results-")]  # no temporary file left
    monkeypatch.undo()
    r = invoke("bench", *SMALL_SWEEP, "--cache-dir", cache_dir, "--out", out, "--resume", "--no-report")
    assert r.exit_code == 0, r.output
    assert sorted(c.key.effort for c in R.load(out / "results.json").cases) == ["high", "low"]


def test_report_on_a_full_disk_is_one_sentence_not_a_plot_traceback(tmp_path, monkeypatch):
    R.save(make_results(), tmp_path / "results.json")
    out = tmp_path / "rep"
    FullDisk(monkeypatch, out, pattern="*.png", free_bytes=100)
    r = invoke("report", tmp_path / "results.json", "--out", out)
    line = one_sentence(r, code=1)
    assert "is full" in line and "--out" in line
    assert "Traceback" not in r.output and "could not be drawn" not in r.output


def test_history_plot_on_a_full_disk_is_an_environment_failure(tmp_path, monkeypatch):
    from bench.tracking.history import History

    db = tmp_path / "h.sqlite"
    with History(db) as h:
        for i in range(3):
            h.add(make_results(run_id=f"run-{i}", created_at=f"2025-01-0{i + 1}T00:00:00+00:00"))
    out = tmp_path / "plots"
    out.mkdir()
    FullDisk(monkeypatch, out, pattern="*.png", free_bytes=100)
    line = one_sentence(invoke("history", "plot", "--db", db, "--out", out / "trend.png"), code=1)
    assert "is full" in line and "--out" in line
