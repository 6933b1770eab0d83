"""Damaged results files: every reader (report, compare as base and as current, history add,
export, bench --resume) answers with one sentence naming the file, exit code 2, no traceback,
and leaves the file as it was."""

import json

import pytest
from click.testing import CliRunner

from bench import results as R
from bench.cli import main
from bench.results import io
from tests.factories import make_results

DAMAGED = {
    "random bytes": bytes(range(256)) * 4,
    "json then binary junk": b'{"schema": "gptoss-harness/results/1"}\xff\xfe\x00junk',
    "json then text junk": b'{"schema": "gptoss-harness/results/1"} trailing',
    "negative schema version": b'{"schema": "gptoss-harness/results/-1"}',
    "fractional schema version": b'{"schema": "gptoss-harness/results/1.5"}',
    "padded schema version": b'{"schema": "gptoss-harness/results/ 1"}',
    "v0 with a garbage body": b'{"schema": "gptoss-harness/results/0", "cases": "garbage", "environment": 7}',
    "v0 with cases that are not objects": b'{"schema": "gptoss-harness/results/0", "cases": [1, [2]]}',
    "nested 200000 deep": b"[" * 200_000 + b"]" * 200_000,
    "nested 500 deep inside a valid file": None,  # built below from a real file
    "a list": b"[1, 2]",
    "a string": b'"gptoss-harness/results/1"',
    "null": b"null",
    "empty": b"",
}


def _deep_inside_a_valid_file() -> bytes:
    doc = make_results().to_dict()
    deep: object = 1
    for _ in range(500):
        deep = [deep]
    doc["environment"] = {"facts": deep}
    return json.dumps(doc).encode()


def _bytes(kind: str) -> bytes:
    return _deep_inside_a_valid_file() if DAMAGED[kind] is None else DAMAGED[kind]


def _readers(bad, good):
    """(name, argv) for every command that reads a results file, with ``bad`` as its input."""
    return [
        ("report", ["report", str(bad), "--out", str(bad.parent / "rep")]),
        ("compare base", ["compare", str(bad), str(good)]),
        ("compare current", ["compare", str(good), str(bad)]),
        ("history add", ["history", "add", str(bad), "--db", str(bad.parent / "h.sqlite"), "--commit", "abc"]),
        ("export", ["export", str(bad), "--format", "pytest-benchmark"]),
        ("bench --resume", ["bench", "--model", "synthetic:tiny", "--device", "cpu", "--out", str(bad.parent),
                            "--resume", "-q"]),
    ]


def _assert_one_sentence(r, path):
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert str(path) in lines[0]


@pytest.mark.parametrize("kind", list(DAMAGED))
def test_every_reader_answers_a_damaged_file_with_one_sentence(tmp_path, kind):
    good = tmp_path / "good.json"
    R.save(make_results(), good)
    folder = tmp_path / "run"
    folder.mkdir()
    bad = folder / "results.json"
    content = _bytes(kind)
    bad.write_bytes(content)
    for name, argv in _readers(bad, good):
        r = CliRunner().invoke(main, argv)
        _assert_one_sentence(r, bad)
        assert bad.read_bytes() == content, name  # nothing lost, nothing rewritten


@pytest.mark.parametrize("kind", list(DAMAGED))
def test_the_loader_raises_results_error(tmp_path, kind):
    path = tmp_path / "results.json"
    path.write_bytes(_bytes(kind))
    with pytest.raises(R.ResultsError) as e:
        R.load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_huge_file_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "MAX_FILE_BYTES", 4096)
    good = tmp_path / "good.json"
    R.save(make_results(), good)
    folder = tmp_path / "run"
    folder.mkdir()
    bad = folder / "results.json"
    bad.write_bytes(b" " * 5000 + good.read_bytes())  # valid JSON, just too large
    for name, argv in _readers(bad, good):
        r = CliRunner().invoke(main, argv)
        _assert_one_sentence(r, bad)
        assert "larger than" in r.stderr, name


def test_the_real_size_limit_on_a_sparse_file(tmp_path):
    path = tmp_path / "results.json"
    with open(path, "wb") as f:
        f.truncate(io.MAX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(R.ResultsError, match="larger than"):
        R.load(path)


def test_a_good_file_still_loads_through_every_reader(tmp_path):
    """The hardening refuses nothing that `gptoss bench` writes."""
    good = tmp_path / "good.json"
    R.save(make_results(), good)
    other = tmp_path / "other.json"
    R.save(make_results(run_id="run-other"), other)
    assert CliRunner().invoke(main, ["compare", str(good), str(other)]).exit_code == 0
    assert CliRunner().invoke(main, ["export", str(good), "--format", "pytest-benchmark"]).exit_code == 0
    r = CliRunner().invoke(main, ["history", "add", str(good), "--db", str(tmp_path / "h.sqlite"), "--commit", "abc"])
    assert r.exit_code == 0, r.output
