"""An option given an empty value (a forgotten shell variable: `--lengths "$LENGTHS"`) is a usage
error with a valid example, never silently replaced by the default."""

import pytest
from click.testing import CliRunner

from bench import results as R
from bench.cli import main
from tests.factories import make_results

BENCH = ["bench", "--model", "synthetic:tiny", "--device", "cpu"]

# option -> the example its error must show (a valid value of that option)
LIST_OPTIONS = {
    "--efforts": "--efforts low,high",
    "--lengths": "--lengths 128,512",
    "--prompt-lengths": "--prompt-lengths 128,1024",
    "--batch-sizes": "--batch-sizes 1,8",
    "--concurrency": "--concurrency 1,4",
    "--quant": "--quant mxfp4,bf16",
    "--cache": "--cache dynamic,static",
    "--attn": "--attn eager",
    "--decode": "--decode generate,graph",
}


def _refused(r, *fragments):
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("value", ["", " ", ",", " , "])
@pytest.mark.parametrize("option", list(LIST_OPTIONS))
def test_an_empty_list_option_is_refused_with_a_valid_example(tmp_path, option, value):
    r = CliRunner().invoke(main, [*BENCH, option, value, "--out", str(tmp_path / "out")])
    _refused(r, f"{option} is empty", f"e.g. {LIST_OPTIONS[option]}.")
    assert not (tmp_path / "out").exists()  # refused before any folder was made


def test_the_example_for_lengths_is_a_valid_lengths_value(tmp_path):
    line = _refused(CliRunner().invoke(main, [*BENCH, "--lengths", "", "--out", str(tmp_path)]))
    assert "low,high" not in line and line.endswith("e.g. --lengths 128,512.")


def test_a_bad_number_shows_the_options_own_example(tmp_path):
    _refused(CliRunner().invoke(main, [*BENCH, "--batch-sizes", "x", "--out", str(tmp_path)]), "e.g. --batch-sizes 1,8.")


@pytest.mark.parametrize("option, value, fragment", [
    ("--max-time", "", "--max-time is empty"), ("--max-time", "  ", "--max-time is empty"),
    ("--max-time", "0s", "leaves no time"), ("--max-time", "0", "leaves no time"),
    ("--rep-time", "", "--rep-time is empty"),
])
def test_an_empty_or_zero_duration_is_refused(tmp_path, option, value, fragment):
    _refused(CliRunner().invoke(main, [*BENCH, option, value, "--out", str(tmp_path / "o")]), fragment, "90s, 15m or 1h")


@pytest.mark.parametrize("argv, fragment", [
    ([*BENCH, "--out", ""], "--out is empty"),
    ([*BENCH, "--cache-dir", ""], "--cache-dir is empty"),
    ([*BENCH, "--revision", ""], "--revision is empty"),
    (["bench", "--backend", "openai", "--model", "m", "--base-url", ""], "--base-url is empty"),
    (["bench", "--backend", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", ""],
     "--api-key-env is empty"),
    (["synthesize", "tiny", "--out", ""], "--out is empty"),
    (["synthesize", "tiny", "--cache-dir", " "], "--cache-dir is empty"),
    (["report", "RESULTS", "--out", ""], "--out is empty"),
    (["compare", "RESULTS", "RESULTS", "--out", ""], "--out is empty"),
    (["export", "RESULTS", "--format", "pytest-benchmark", "--out", ""], "--out is empty"),
    (["history", "list", "--db", ""], "--db is empty"),
    (["history", "plot", "--out", ""], "--out is empty"),
    (["check", "--model", ""], "--model is empty"),
    (["check", "--model", "synthetic:bogus"], "unknown synthetic model 'synthetic:bogus'"),
])
def test_other_empty_values_are_refused_not_defaulted(tmp_path, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results.json"
    R.save(make_results(), results)
    argv = [str(results) if a == "RESULTS" else a for a in argv]
    _refused(CliRunner().invoke(main, argv), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # nothing written in the current folder
