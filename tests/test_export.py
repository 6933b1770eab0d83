"""gptoss export: pytest-benchmark JSON (checked against pytest-benchmark itself) and
github-action-benchmark lists."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest
from click.testing import CliRunner

from bench import results as R
from bench.cli import main
from bench.tracking.export import pytest_benchmark_stats, to_github_action_benchmark, to_pytest_benchmark
from bench.results import METRICS
from tests.factories import DECODE_BASE, KEY, KEY2, make_results, save_results

CASE = {
    "decode_tok_s": DECODE_BASE,
    "ttft_s": [0.10, 0.11, 0.09, 0.12, 0.10],
    "itl_p50_s": [0.010, 0.011, 0.010, 0.012, 0.010],
    "peak_alloc_bytes": [1.3e10] * 5,
    "roofline_frac": [0.4, 0.41, 0.39, 0.4, 0.4],
    "final_tokens": [100, 100, 100, 100, 100],
}


def _results() -> R.Results:
    return make_results({KEY: CASE, KEY2: {}}, statuses={KEY2: "oom"},
                        loads=[R.LoadRecord(quant="auto", attn="auto", weights_path="mxfp4",
                                            metrics={"load_s": 10.5, "load_peak_bytes": 15.2e9, "download_s": None})])


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


DATA = [[3.0], [2.0, 1.0], [1.0, 5.0, 2.0], [4.0, 1.0, 3.0, 2.0], [1, 2, 3, 4, 50.0],
        [9, 1, 8, 2, 7, 3.0], [1, 2, 3, 4, 5, 6, 100.0], [0.5, 0.5, 0.5, 0.7, 0.1, 0.2, 0.9, 0.3, 0.4, 0.6, 0.8]]


@pytest.mark.parametrize("data", DATA)
def test_stats_match_pytest_benchmark(data):
    """The exported stats are the figures of the installed pytest-benchmark's own Stats."""
    stats_mod = pytest.importorskip("pytest_benchmark.stats")
    ref = stats_mod.Stats()
    for x in data:
        ref.update(x)
    ours = pytest_benchmark_stats(data)
    assert set(ours) == set(stats_mod.Stats.fields) | {"data", "iterations"}
    for name in stats_mod.Stats.fields:
        assert ours[name] == pytest.approx(getattr(ref, name)), name


@pytest.mark.parametrize("data", DATA)
def test_stats_without_pytest_benchmark(monkeypatch, data):
    """Without pytest-benchmark the same fields come from our own formulas; the Tukey fences are
    data inside the fences, the order statistics are exact."""
    monkeypatch.setitem(sys.modules, "pytest_benchmark.stats", None)  # import fails
    ours = pytest_benchmark_stats(data)
    s = sorted(float(x) for x in data)
    assert (ours["min"], ours["max"], ours["rounds"], ours["total"]) == (s[0], s[-1], len(s), pytest.approx(sum(s)))
    assert ours["median"] == pytest.approx(statistics.median(s)) and ours["q1"] <= ours["median"] <= ours["q3"]
    fence_lo, fence_hi = ours["q1"] - 1.5 * ours["iqr"], ours["q3"] + 1.5 * ours["iqr"]
    assert ours["ld15iqr"] == min(x for x in s if x >= fence_lo)
    assert ours["hd15iqr"] == max(x for x in s if x <= fence_hi)
    assert ours["iqr_outliers"] == sum(1 for x in s if x < fence_lo or x > fence_hi)


def test_pytest_benchmark_document():
    doc = to_pytest_benchmark(_results(), commit="abc123")
    assert set(doc) == {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    assert doc["commit_info"]["id"] == "abc123" and set(doc["commit_info"]) >= {"time", "dirty", "project", "branch"}
    assert doc["machine_info"]["gptoss"]["gpu"] == "NVIDIA H100 80GB HBM3" and doc["machine_info"]["gptoss"]["model"] == "synthetic:gpt-oss-20b"
    by = {b["name"]: b for b in doc["benchmarks"]}
    # Times as they are, throughput inverted, no memory/token/fraction benchmarks, no failed case.
    assert set(by) == {f"decode_s_per_tok[{KEY.id}]", f"ttft_s[{KEY.id}]", f"itl_p50_s[{KEY.id}]", "load_s[load/auto/auto]"}
    dec = by[f"decode_s_per_tok[{KEY.id}]"]
    assert dec["stats"]["data"] == pytest.approx([1 / x for x in DECODE_BASE])
    assert dec["stats"]["rounds"] == 10 and dec["stats"]["iterations"] == 1
    assert dec["extra_info"]["transform"] == "1/decode_tok_s" and dec["extra_info"]["unit"] == "s/tok"
    assert dec["extra_info"]["metrics"] == {"peak_alloc_bytes": 1.3e10, "roofline_frac": 0.4, "final_tokens": 100}
    assert dec["params"] == KEY.to_dict() and dec["param"] == KEY.id and dec["group"] == "decode_s_per_tok"
    assert dec["fullname"].startswith("gptoss::synthetic:gpt-oss-20b::")
    assert by[f"ttft_s[{KEY.id}]"]["stats"]["median"] == pytest.approx(0.10)
    load = by["load_s[load/auto/auto]"]
    assert load["stats"]["rounds"] == 1 and load["stats"]["median"] == 10.5
    assert load["extra_info"]["metrics"] == {"load_peak_bytes": 15.2e9}
    assert set(dec) == {"group", "name", "fullname", "params", "param", "extra_info", "options", "stats"}


def test_pytest_benchmark_cli_reads_the_export(tmp_path):
    pytest.importorskip("pytest_benchmark")
    src = save_results(tmp_path, "r.json", _results())
    out = tmp_path / "pb.json"
    r = invoke("export", src, "--format", "pytest-benchmark", "--out", str(out), "--commit", "feed")
    assert r.exit_code == 0 and "4 entries" in r.stderr
    assert json.loads(out.read_text())["commit_info"]["id"] == "feed"
    cli = subprocess.run([sys.executable, "-m", "pytest_benchmark", "compare", str(out), "--columns=min,median,rounds"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert f"decode_s_per_tok[{KEY.id}]" in cli.stdout and "load_s[load/auto/auto]" in cli.stdout


def test_github_action_benchmark_bigger_and_smaller():
    res = _results()
    bigger = to_github_action_benchmark(res, "customBiggerIsBetter")
    assert [e["name"] for e in bigger] == [f"{KEY.id} decode_tok_s", f"{KEY.id} roofline_frac"]
    d = bigger[0]
    assert d["unit"] == "tok/s" and d["value"] == pytest.approx(100.15) and d["range"].startswith("± ")
    assert "n=10" in d["extra"] and "weights=mxfp4" in d["extra"] and "gpu=NVIDIA H100 80GB HBM3" in d["extra"]
    smaller = to_github_action_benchmark(res, "customSmallerIsBetter")
    names = [e["name"] for e in smaller]
    assert names == [f"{KEY.id} ttft_s", f"{KEY.id} itl_p50_s", f"{KEY.id} peak_alloc_bytes", f"{KEY.id} final_tokens",
                     "load/auto/auto load_s", "load/auto/auto load_peak_bytes"]
    assert all(not METRICS[n.split()[-1]].higher_is_better for n in names)
    assert "range" not in smaller[-1]  # a single load value has no spread
    assert all(set(e) <= {"name", "unit", "value", "range", "extra"} for e in bigger + smaller)


def test_github_action_benchmark_cli(tmp_path):
    src = save_results(tmp_path, "r.json", _results())
    r = invoke("export", src, "--format", "github-action-benchmark")
    assert r.exit_code == 0
    assert [e["name"].split()[-1] for e in json.loads(r.stdout)] == ["decode_tok_s", "roofline_frac"]
    r = invoke("export", src, "--format", "github-action-benchmark", "--tool", "customSmallerIsBetter", "--metric", "ttft_s")
    assert [e["name"] for e in json.loads(r.stdout)] == [f"{KEY.id} ttft_s"]
    out = tmp_path / "g.json"
    r = invoke("export", src, "--format", "github-action-benchmark", "--out", str(out))
    assert r.exit_code == 0 and r.stdout == "" and len(json.loads(out.read_text())) == 2


@pytest.mark.parametrize("args, needle", [
    (["--format", "github-action-benchmark", "--metric", "ttft_s"], "--tool customSmallerIsBetter"),
    (["--format", "github-action-benchmark", "--metric", "speed"], "unknown metric 'speed'"),
    (["--format", "pytest-benchmark", "--metric", "ttft_s"], "github-action-benchmark only"),
])
def test_export_usage_errors(tmp_path, args, needle):
    src = save_results(tmp_path, "r.json", _results())
    r = invoke("export", src, *args)
    assert r.exit_code == 2 and needle in r.stderr


def test_export_bad_format_and_file(tmp_path):
    r = invoke("export", str(tmp_path / "none.json"), "--format", "pytest-benchmark")
    assert r.exit_code == 2 and "does not exist" in r.stderr
    r = invoke("export", str(tmp_path / "none.json"), "--format", "csv")
    assert r.exit_code == 2


def test_export_out_in_missing_folder_is_a_usage_error(tmp_path):
    path = save_results(tmp_path, "r.json", _results())
    r = invoke("export", path, "--format", "pytest-benchmark", "--out", str(tmp_path / "no" / "pb.json"))
    assert r.exit_code == 2 and "cannot write" in r.stderr and "--out" in r.stderr


def test_zero_throughput_is_skipped_not_infinite():
    res = make_results({KEY: {"decode_tok_s": [0.0, 0.0, 0.0]}})
    doc = to_pytest_benchmark(res)
    assert not any(b["name"].startswith("decode_s_per_tok") for b in doc["benchmarks"])
    json.dumps(doc, allow_nan=False)


def test_help_has_examples():
    r = invoke("export", "--help")
    assert "Example:" in r.stdout and "customBiggerIsBetter" in r.stdout
