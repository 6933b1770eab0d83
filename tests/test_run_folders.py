"""Where a run writes, and what may stop the next one: the README's command can be run again
(a new run folder each time), a run that failed to start does not block the suggested fix, and
two runs into one folder at the same time are refused by a lock (two real processes)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench import results as R
from bench.cli import main
from bench.sweep.outdir import LOCK_NAME, RunLock, holds_measurements, run_folder
from tests.factories import make_results
from tests.tiny_runs import cache_dir, invoke, no_environment_snapshot  # noqa: F401 (fixtures)

README = Path(__file__).resolve().parents[1] / "README.md"
SMALL = ["--efforts", "low", "--lengths", "4", "--reps", "1", "--warmup", "0", "--no-report", "-q"]


def readme_first_command() -> list[str]:
    """`gptoss bench ...` from the README's set-up block (the main job a new user runs first)."""
    text = README.read_text(encoding="utf-8")
    setup = text[text.index("## Set-up on a fresh machine"):]
    m = re.search(r"&& gptoss (bench[^\n`]*)", setup)
    assert m, "the README's first command runs `gptoss bench`"
    return m.group(1).split()


# ---- the README's main job, twice --------------------------------------------------------------


def test_the_readmes_first_command_can_be_run_twice(tmp_path, monkeypatch, cache_dir):
    monkeypatch.chdir(tmp_path)
    argv = readme_first_command() + ["--device", "cpu", "--cache-dir", cache_dir, *SMALL]  # a smaller sweep
    first, second = CliRunner().invoke(main, argv), CliRunner().invoke(main, argv)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "results: gptoss-results/run-1/results.json" in first.output
    assert "results: gptoss-results/run-2/results.json" in second.output
    for n in (1, 2):
        assert R.load(tmp_path / "gptoss-results" / f"run-{n}").complete
        assert not (tmp_path / "gptoss-results" / f"run-{n}" / LOCK_NAME).exists()  # the lock went with the run


def test_resume_without_out_continues_the_newest_run(tmp_path, monkeypatch, cache_dir):
    monkeypatch.chdir(tmp_path)
    base = ["bench", "--model", "synthetic:tiny", "--device", "cpu", "--cache-dir", cache_dir, *SMALL]
    assert invoke(*base).exit_code == 0
    r = invoke(*base[:-len(SMALL)], *SMALL, "--resume", "--efforts", "low,high")
    assert r.exit_code == 0, r.output
    assert sorted(c.key.effort for c in R.load(tmp_path / "gptoss-results" / "run-1").cases) == ["high", "low"]
    assert not (tmp_path / "gptoss-results" / "run-2").exists()


def test_run_folders_are_numbered_and_never_shared(tmp_path):
    root = tmp_path / "gptoss-results"
    assert run_folder(root, resume=True) == root / "run-1"  # nothing to resume: a new one
    assert run_folder(root) == root / "run-2"
    (root / "run-9").mkdir()
    (root / "notes").mkdir()
    assert run_folder(root, resume=True) == root / "run-9"
    assert run_folder(root) == root / "run-10"


# ---- a failed start does not block the fix -----------------------------------------------------


def test_device_cuda_without_a_gpu_then_the_suggested_device_cpu(tmp_path, monkeypatch, cache_dir):
    """The issue's flow: --device cuda on a machine without a GPU, then the suggested --device cpu
    into the same --out, with and without --resume."""
    out = tmp_path / "out"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ["bench", "--model", "synthetic:tiny", "--cache-dir", cache_dir, "--out", out, *SMALL]
    failed = invoke(*args, "--device", "cuda")
    assert failed.exit_code == 2 and "--device cpu" in failed.stderr, failed.output
    assert not (out / "results.json").exists()
    fixed = invoke(*args, "--device", "cpu")
    assert fixed.exit_code == 0, fixed.output
    assert [c.status for c in R.load(out).cases] == ["ok"]

    out2 = tmp_path / "out2"
    args2 = [a if a != out else out2 for a in args]
    assert invoke(*args2, "--device", "cuda").exit_code == 2
    resumed = invoke(*args2, "--device", "cpu", "--resume")
    assert resumed.exit_code == 0, resumed.output


def test_a_run_that_failed_at_load_leaves_nothing_that_blocks_the_next(tmp_path, cache_dir):
    out = tmp_path / "out"
    args = ["bench", "--model", "synthetic:tiny", "--device", "cpu", "--cache-dir", cache_dir, "--out", out, *SMALL]
    failed = invoke(*args, "--attn", "sdpa")  # transformers refuses sdpa for gpt-oss on a CPU, at load time
    assert failed.exit_code == 2 and "--attn eager" in failed.stderr, failed.output
    assert not (out / "results.json").exists()
    fixed = invoke(*args, "--attn", "eager")  # the suggested fix, without --resume
    assert fixed.exit_code == 0, fixed.output


def test_a_results_file_that_holds_no_measurement_is_replaced(tmp_path, cache_dir, caplog):
    """Such a file, left by an older version after a failed start, no longer blocks a run."""
    out = tmp_path / "out"
    empty = make_results(cases={}, loads=[])
    empty.complete = False
    R.save(empty, out / "results.json")
    r = invoke("bench", "--model", "synthetic:tiny", "--device", "cpu", "--cache-dir", cache_dir, "--out", out, *SMALL)
    assert r.exit_code == 0, r.output
    assert "holds no measurement" in caplog.text
    assert len(R.load(out).cases) == 1


def test_what_counts_as_a_measurement():
    assert holds_measurements(make_results())
    assert not holds_measurements(make_results(cases={}, loads=[]))
    failed_load = [R.LoadRecord(quant="auto", attn="auto", status="error", message="boom")]
    assert not holds_measurements(make_results(cases={}, loads=failed_load))
    errors = make_results(statuses={R.CaseKey(effort="low", output_len=256, prompt_len=128): "error"}, loads=failed_load)
    assert not holds_measurements(errors)
    assert holds_measurements(make_results(cases={}, loads=[R.LoadRecord(quant="auto", attn="auto", metrics={"load_s": 1.0})]))


# ---- two runs into one folder ------------------------------------------------------------------


def _gptoss(*args) -> list[str]:
    return [sys.executable, "-c", "from bench.cli import main; main()", *map(str, args)]


def test_a_second_run_into_the_same_out_is_refused_while_the_first_runs(tmp_path, cache_dir):
    out = tmp_path / "out"
    long_run = ["bench", "--model", "synthetic:tiny", "--device", "cpu", "--efforts", "low", "--lengths", "8",
                "--reps", "100000", "--max-reps", "100000", "--warmup", "0", "--cache-dir", cache_dir, "--out", out, "-q"]
    first = subprocess.Popen(_gptoss(*long_run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        lock = out / LOCK_NAME
        while not (lock.exists() and lock.read_text() == str(first.pid)):
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.1)
        second = subprocess.run(_gptoss(*long_run), capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert second.stderr.strip() == (
            f"error: another gptoss bench (pid {first.pid}) is writing into {out}; wait for it to finish or pass another --out."
        )
        assert first.poll() is None  # the first run goes on, undisturbed
    finally:
        first.send_signal(signal.SIGKILL)  # killed: no chance to release the lock itself
        first.wait(timeout=60)
    # Stale-safe: the lock died with the process even though its file is still there.
    assert (out / LOCK_NAME).exists()
    third = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from bench.sweep.outdir import "
                            "RunLock; RunLock(Path(sys.argv[1])).acquire(); print('locked')", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert third.returncode == 0 and third.stdout.strip() == "locked", third.stderr


def test_the_lock_in_one_process(tmp_path):
    folder = tmp_path / "run-1"
    folder.mkdir()
    a = RunLock(folder).acquire()
    with pytest.raises(R.UserError, match="is writing into"):
        RunLock(folder).acquire()
    a.release()
    assert not folder.exists()  # a numbered run folder that holds nothing goes with its lock
    b = RunLock(tmp_path).acquire()
    (tmp_path / "results.json").write_text("{}")
    b.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_file_system_without_locks_runs_unguarded(tmp_path, monkeypatch, caplog):
    import errno

    from bench.sweep import outdir

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(outdir.fcntl, "flock", no_locks)
    lock = RunLock(tmp_path).acquire()
    lock.release()
    assert "cannot lock" in caplog.text
