"""gptoss compare: thresholds, the rank test, verdicts, mismatches, formats and exit codes.

The results factories shared with the history, export and CI-flow tests live in tests/factories.py.
"""

from __future__ import annotations

import itertools
import json

import pytest
from click.testing import CliRunner

from bench import results as R
from bench.cli import main
from bench.tracking.compare import (
    DEFAULT_FAIL_ON,
    IMPROVEMENT,
    NOT_SIGNIFICANT,
    NOW_FAILS,
    NOW_RUNS,
    REGRESSION,
    UNCHANGED,
    WORSE,
    BETTER,
    Threshold,
    compare,
    compare_metric,
    mann_whitney,
    min_attainable_p,
    parse_threshold,
    parse_thresholds,
    can_test,
)
from bench.results.errors import UserError
from tests.factories import DECODE_BASE, KEY, KEY2, make_results, old_v0_file, save_results

# Ten repetitions each, no overlap with DECODE_BASE: a clear 20% drop (and gain) in decode speed.
DECODE_SLOW = [80.0, 80.6, 79.5, 80.9, 80.2, 79.8, 80.3, 80.1, 79.6, 80.4]
DECODE_FAST = [120.0, 121.0, 119.4, 120.5, 120.2, 119.8, 120.3, 120.7, 119.6, 120.1]
# Noise only: a wide spread, medians 6% apart, samples interleaved.
NOISY_BASE = [70.0, 130.0, 95.0, 110.0, 85.0, 120.0, 100.0, 90.0, 115.0, 80.0]
NOISY_CUR = [66.0, 125.0, 89.0, 103.0, 79.0, 114.0, 94.0, 85.0, 108.0, 76.0]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# ---------------------------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, metric, pct",
    [("decode_tok_s:-5%", "decode_tok_s", 5.0), ("peak_alloc_bytes:+10%", "peak_alloc_bytes", 10.0),
     ("ttft_s:2.5%", "ttft_s", 2.5), (" load_s : + 20 % ", "load_s", 20.0), ("decode_tok_s:0%", "decode_tok_s", 0.0)],
)
def test_threshold_parsed(text, metric, pct):
    th = parse_threshold(text)
    assert (th.metric, th.pct) == (metric, pct)


def test_threshold_str_carries_the_worse_sign():
    assert str(parse_threshold("decode_tok_s:5%")) == "decode_tok_s:-5%"
    assert str(parse_threshold("peak_alloc_bytes:10%")) == "peak_alloc_bytes:+10%"


@pytest.mark.parametrize("text", ["decode_tok_s", "decode_tok_s:-5", "decode_tok_s:-x%", ":-5%", "decode_tok_s:--5%", "", "decode_tok_s=-5%"])
def test_malformed_threshold_rejected_with_expected_form(text):
    with pytest.raises(UserError, match=r"METRIC:\[\+\|-\]PCT%"):
        parse_threshold(text)


def test_unknown_metric_lists_valid_names():
    with pytest.raises(UserError) as e:
        parse_threshold("tokens_per_sec:-5%")
    assert "decode_tok_s" in str(e.value) and "peak_alloc_bytes" in str(e.value) and "load_s" in str(e.value)


def test_threshold_pointing_the_better_way_rejected():
    with pytest.raises(UserError, match=r"decode_tok_s:-5%"):
        parse_threshold("decode_tok_s:+5%")
    with pytest.raises(UserError, match=r"peak_alloc_bytes:\+10%"):
        parse_threshold("peak_alloc_bytes:-10%")


def test_same_metric_twice_keeps_last():
    ths = parse_thresholds(["decode_tok_s:-5%", "decode_tok_s:-2%"])
    assert ths == {"decode_tok_s": Threshold("decode_tok_s", 2.0)}


def test_defaults_parse():
    assert set(parse_thresholds(DEFAULT_FAIL_ON)) == {"decode_tok_s", "ttft_s", "peak_alloc_bytes"}


# ---------------------------------------------------------------------------------------------
# The rank test
# ---------------------------------------------------------------------------------------------


def _brute_force(base, cur, higher):
    """P(R <= r) and P(R >= r) by enumerating every split: the definition of the exact test."""
    sign = 1 if higher else -1
    values = [sign * v for v in base + cur]
    order = sorted(values)
    rank = {v: (order.index(v) + 1 + len(order) - order[::-1].index(v)) / 2 for v in values}
    r_obs = sum(rank[sign * v] for v in cur)
    sums = [sum(rank[values[i]] for i in combo) for combo in itertools.combinations(range(len(values)), len(cur))]
    return sum(s <= r_obs + 1e-9 for s in sums) / len(sums), sum(s >= r_obs - 1e-9 for s in sums) / len(sums)


@pytest.mark.parametrize(
    "base, cur, higher",
    [([1, 2, 3, 4], [5, 6, 7, 8], True), ([3, 1, 4, 1, 5], [9, 2, 6, 5], False), ([1, 1, 2, 2, 3], [2, 3, 3, 4], True),
     ([5, 5, 5], [5, 5, 6], True), ([10.0, 11.0, 12.0], [7.0, 8.0, 9.0], True)],
)
def test_exact_test_matches_enumeration(base, cur, higher):
    t = mann_whitney(base, cur, higher)
    lo, hi = _brute_force(base, cur, higher)
    assert t.method == "exact"
    assert t.p_worse == pytest.approx(lo) and t.p_better == pytest.approx(hi)


def test_exact_known_value():
    # Complete separation of 4 vs 4: 1 / C(8, 4) = 1/70 (the textbook value).
    t = mann_whitney([5, 6, 7, 8], [1, 2, 3, 4], higher_is_better=True)
    assert t.p_worse == pytest.approx(1 / 70)
    assert t.p_better == pytest.approx(1.0)


def test_normal_approximation_used_for_large_samples_and_agrees():
    base = [100 + (i % 7) * 0.5 for i in range(20)]
    cur = [99 + (i % 5) * 0.5 for i in range(20)]
    t = mann_whitney(base, cur, True)
    assert t.method == "normal"
    assert 0 < t.p_worse < 0.05 < t.p_better
    # Shrink to the exact range and check the approximation is in the same place.
    t_exact = mann_whitney(base[:15], cur[:15], True)
    assert t_exact.method == "exact" and t_exact.p_worse < 0.05


def test_all_tied_gives_no_evidence():
    t = mann_whitney([5.0] * 20, [5.0] * 20, True)
    assert t.p_worse == 1.0 and t.p_better == 1.0


def test_min_attainable_p_and_testable():
    assert min_attainable_p(2, 2) == pytest.approx(1 / 6)
    assert min_attainable_p(3, 3) == pytest.approx(1 / 20)
    assert not can_test(2, 2) and can_test(3, 3) and can_test(2, 5) and not can_test(1, 10)
    assert not can_test(0, 5)


# ---------------------------------------------------------------------------------------------
# Metric verdicts
# ---------------------------------------------------------------------------------------------

TH = Threshold("decode_tok_s", 5.0)


def test_clear_regression():
    m = compare_metric("decode_tok_s", DECODE_BASE, DECODE_SLOW, TH)
    assert m.verdict == REGRESSION and m.direction == "worse" and m.test == "exact"
    assert m.pct == pytest.approx(-20, abs=0.5) and m.p_value < 0.001


def test_noise_only_difference_is_not_significant():
    m = compare_metric("decode_tok_s", NOISY_BASE, NOISY_CUR, TH)
    assert abs(m.pct) > 5  # beyond the threshold on medians...
    assert m.verdict == NOT_SIGNIFICANT and m.p_value >= 0.05  # ...but within the noise
    assert "noise" in m.note


def test_improvement():
    m = compare_metric("decode_tok_s", DECODE_BASE, DECODE_FAST, TH)
    assert m.verdict == IMPROVEMENT and m.direction == "better" and m.p_value < 0.001


def test_lower_is_better_metric_growing_is_a_regression():
    m = compare_metric("peak_alloc_bytes", [1e9] * 5, [1.2e9] * 5, Threshold("peak_alloc_bytes", 10))
    assert m.verdict == REGRESSION and m.direction == "worse" and m.p_value < 0.05


def test_significant_but_within_threshold_is_worse_not_regression():
    m = compare_metric("decode_tok_s", DECODE_BASE, [x * 0.97 for x in DECODE_BASE], TH)
    assert m.verdict == WORSE and "within" in m.note


def test_ungated_metric_reports_direction_only():
    m = compare_metric("itl_p50_s", [0.010] * 5, [0.008] * 5, None)
    assert m.verdict == BETTER and m.threshold is None


def test_identical_is_unchanged():
    m = compare_metric("decode_tok_s", DECODE_BASE, DECODE_BASE, TH)
    assert m.verdict == UNCHANGED and m.delta == 0


def test_too_few_samples_threshold_alone_decides():
    m = compare_metric("decode_tok_s", [100.0, 101.0], [90.0, 91.0], TH)
    assert m.verdict == REGRESSION and m.p_value is None and m.test is None
    assert "too few samples" in m.note
    # Within the threshold with too few samples: unchanged, and it says why.
    m = compare_metric("decode_tok_s", [100.0, 101.0], [98.0, 99.0], TH)
    assert m.verdict == UNCHANGED and "within" in m.note and "too few samples" in m.note
    # No threshold, too few samples: a direction, untested.
    m = compare_metric("itl_p50_s", [0.01], [0.02], None)
    assert m.verdict == WORSE and m.p_value is None


def test_zero_base():
    m = compare_metric("analysis_tokens", [0, 0, 0], [5, 5, 5], Threshold("analysis_tokens", 10))
    assert m.pct is None and m.verdict == REGRESSION


# ---------------------------------------------------------------------------------------------
# Whole comparisons and the CLI
# ---------------------------------------------------------------------------------------------


def test_cli_clear_regression_exit_1_with_env_difference(tmp_path):
    b = save_results(tmp_path, "b.json", make_results())
    c = save_results(tmp_path, "c.json", make_results({KEY: {"decode_tok_s": DECODE_SLOW}}, run_id="run-cur",
                                                      env={"torch": "2.12.0", "transformers": "5.23.0"}))
    r = invoke("compare", b, c)
    assert r.exit_code == 1, r.output
    assert r.stdout.startswith("FAIL: 1 regression")
    assert "REGRESSION" in r.stdout
    assert "torch: 2.11.0 -> 2.12.0" in r.stdout and "transformers: 5.17.0 -> 5.23.0" in r.stdout
    assert "Mann-Whitney" in r.stdout


def test_cli_regression_with_identical_env_says_so(tmp_path):
    b = save_results(tmp_path, "b.json", make_results())
    c = save_results(tmp_path, "c.json", make_results({KEY: {"decode_tok_s": DECODE_SLOW}}, run_id="run-cur"))
    r = invoke("compare", b, c)
    assert r.exit_code == 1 and "Environment: identical" in r.stdout


def test_cli_noise_only_exit_0(tmp_path):
    b = save_results(tmp_path, "b.json", make_results({KEY: {"decode_tok_s": NOISY_BASE}}))
    c = save_results(tmp_path, "c.json", make_results({KEY: {"decode_tok_s": NOISY_CUR}}, run_id="run-cur"))
    r = invoke("compare", b, c)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("PASS") and NOT_SIGNIFICANT in r.stdout


def test_cli_improvement_exit_0(tmp_path):
    b = save_results(tmp_path, "b.json", make_results())
    c = save_results(tmp_path, "c.json", make_results({KEY: {"decode_tok_s": DECODE_FAST}}, run_id="run-cur"))
    r = invoke("compare", b, c, "--format", "json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["status"] == "pass" and doc["improvements"] == [{"case": KEY.id, "metric": "decode_tok_s"}]
    assert doc["cases"][0]["metrics"][0]["verdict"] == IMPROVEMENT


def test_cli_fail_on_replaces_defaults(tmp_path):
    b = save_results(tmp_path, "b.json", make_results())
    c = save_results(tmp_path, "c.json", make_results({KEY: {"decode_tok_s": DECODE_SLOW}}, run_id="run-cur"))
    # A 20% drop passes a 25% threshold...
    assert invoke("compare", b, c, "--fail-on", "decode_tok_s:-25%").exit_code == 0
    # ...and a threshold on another metric does not gate decode at all.
    r = invoke("compare", b, c, "--fail-on", "ttft_s:+10%", "--format", "json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["thresholds"] == ["ttft_s:+10%"] and doc["cases"][0]["metrics"][0]["verdict"] == WORSE


@pytest.mark.parametrize("bad, needle", [("decode_tok_s:-5", "METRIC:[+|-]PCT%"), ("speed:-5%", "valid metrics: ttft_s")])
def test_cli_bad_threshold_exit_2(tmp_path, bad, needle):
    b = save_results(tmp_path, "b.json", make_results())
    r = invoke("compare", b, b, "--fail-on", bad)
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and needle in r.stderr
    assert "Traceback" not in r.output


def test_cli_missing_file_exit_2(tmp_path):
    b = save_results(tmp_path, "b.json", make_results())
    r = invoke("compare", b, str(tmp_path / "nope.json"))
    assert r.exit_code == 2 and "does not exist" in r.stderr


def test_cli_markdown_for_a_pr_comment(tmp_path):
    b = save_results(tmp_path, "b.json", make_results({KEY: {"decode_tok_s": DECODE_BASE, "itl_p50_s": [0.01] * 10}}))
    c = save_results(tmp_path, "c.json", make_results({KEY: {"decode_tok_s": DECODE_SLOW, "itl_p50_s": [0.0125] * 10}},
                                                      run_id="run-cur", env={"driver": "560.1"}))
    r = invoke("compare", b, c, "--format", "markdown")
    assert r.exit_code == 1
    md = r.stdout
    assert md.startswith("### gptoss compare: FAIL")
    assert "| case | metric | base | current | change | direction | p | verdict | note |" in md
    assert "| driver | 550.54 | 560.1 |" in md
    assert "<details><summary>All metrics</summary>" in md and "itl_p50_s" in md
    assert not any(ord(ch) > 0x2000 for ch in md)  # no emoji: status words only


def test_cli_out_file(tmp_path):
    b = save_results(tmp_path, "b.json", make_results())
    out = tmp_path / "comment.md"
    r = invoke("compare", b, b, "--format", "markdown", "--out", str(out))
    assert r.exit_code == 0 and r.stdout == ""
    assert out.read_text().startswith("### gptoss compare: PASS") and "PASS" in r.stderr


def test_cli_out_in_missing_folder_is_a_usage_error(tmp_path):
    b = save_results(tmp_path, "b.json", make_results())
    r = invoke("compare", b, b, "--out", str(tmp_path / "no" / "comment.md"))
    assert r.exit_code == 2 and "cannot write" in r.stderr and "--out" in r.stderr


def test_json_is_complete(tmp_path):
    b = save_results(tmp_path, "b.json", make_results())
    c = save_results(tmp_path, "c.json", make_results({KEY: {"decode_tok_s": DECODE_SLOW}}, run_id="run-cur", env={"kernels": "0.17.0"}))
    r = invoke("compare", b, c, "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["status"] == "fail" and doc["alpha"] == 0.05 and "Mann-Whitney" in doc["test"]
    assert doc["regressions"] == [{"case": KEY.id, "metric": "decode_tok_s", "verdict": REGRESSION}]
    assert doc["env_differences"] == {"kernels": {"base": "0.16.2", "current": "0.17.0"}}
    m = doc["cases"][0]["metrics"][0]
    assert set(m) >= {"base", "current", "delta", "pct", "direction", "p_value", "test", "verdict", "threshold"}
    assert m["threshold"] == "decode_tok_s:-5%" and m["test"] == "exact"


def test_too_few_samples_said_in_output(tmp_path):
    b = save_results(tmp_path, "b.json", make_results({KEY: {"decode_tok_s": [100.0, 100.5]}}))
    c = save_results(tmp_path, "c.json", make_results({KEY: {"decode_tok_s": [90.0, 90.5]}}, run_id="run-cur"))
    r = invoke("compare", b, c)
    assert r.exit_code == 1
    assert "too few samples for the rank test" in r.stdout and "threshold alone decided" in r.stdout
    assert "untested" in r.stdout


# ---- mismatches ----


def test_different_gpu_refused_then_allowed(tmp_path):
    b = save_results(tmp_path, "b.json", make_results())
    c = save_results(tmp_path, "c.json", make_results(run_id="run-cur", env={"gpu": "Tesla T4"}))
    r = invoke("compare", b, c)
    assert r.exit_code == 2 and "GPU" in r.stderr and "Tesla T4" in r.stderr and "--allow-mismatch" in r.stderr
    r = invoke("compare", b, c, "--allow-mismatch")
    assert r.exit_code == 0 and "MISMATCH (allowed by --allow-mismatch): GPU" in r.stdout


def test_different_weights_path_refused_then_allowed(tmp_path):
    b = save_results(tmp_path, "b.json", make_results())
    c = save_results(tmp_path, "c.json", make_results({KEY: {"decode_tok_s": DECODE_SLOW}}, run_id="run-cur", weights_path="bf16"))
    r = invoke("compare", b, c)
    assert r.exit_code == 2 and "weights path" in r.stderr and "mxfp4" in r.stderr and "bf16" in r.stderr
    r = invoke("compare", b, c, "--allow-mismatch")
    assert r.exit_code == 1 and "MISMATCH" in r.stdout


def test_different_model_refused():
    with pytest.raises(UserError, match="model"):
        compare(make_results(), make_results(model_id="openai/gpt-oss-20b"))


def test_gpu_count_mismatch_found():
    c = compare(make_results(), make_results(env={"gpu_count": 2}), allow_mismatch=True)
    assert any("GPU count" in m for m in c.mismatches)


# ---- case matching and statuses ----


def test_cases_matched_on_key_and_unmatched_listed(tmp_path):
    b = make_results({KEY: {"decode_tok_s": DECODE_BASE}, KEY2: {"decode_tok_s": DECODE_BASE}})
    key3 = R.CaseKey(effort="medium", output_len=256, prompt_len=128)
    c = make_results({KEY: {"decode_tok_s": DECODE_BASE}, key3: {"decode_tok_s": DECODE_BASE}}, run_id="run-cur")
    cmp_ = compare(b, c)
    assert [x.id for x in cmp_.cases if x.phase == "case"] == [KEY.id]
    assert cmp_.only_in_base == [KEY2.id] and cmp_.only_in_current == [key3.id]
    r = invoke("compare", save_results(tmp_path, "b.json", b), save_results(tmp_path, "c.json", c))
    assert "Only in BASE (not compared): " + KEY2.id in r.stdout


def test_no_case_in_common_is_a_usage_error():
    b = make_results({KEY: {"decode_tok_s": DECODE_BASE}})
    c = make_results({KEY2: {"decode_tok_s": DECODE_BASE}})
    with pytest.raises(UserError, match="no case in common"):
        compare(b, c)


def test_case_that_now_fails_is_a_regression(tmp_path):
    b = save_results(tmp_path, "b.json", make_results({KEY: {"decode_tok_s": DECODE_BASE}, KEY2: {"decode_tok_s": DECODE_BASE}}))
    c = save_results(tmp_path, "c.json", make_results({KEY: {"decode_tok_s": DECODE_BASE}, KEY2: {}}, run_id="run-cur",
                                                      statuses={KEY2: "oom"}))
    r = invoke("compare", b, c)
    assert r.exit_code == 1 and NOW_FAILS.upper() in r.stdout and "CUDA out of memory" in r.stdout
    # ...and the other way round is reported, not failed.
    r = invoke("compare", c, b)
    assert r.exit_code == 0 and NOW_RUNS in r.stdout


def test_load_metrics_compared_on_quant_attn_threshold_alone():
    b = make_results()
    c = make_results(run_id="run-cur", loads=[R.LoadRecord(quant="auto", attn="auto", weights_path="mxfp4",
                                                           metrics={"load_s": 13.0, "load_peak_bytes": 15.2e9})])
    cmp_ = compare(b, c, parse_thresholds(["load_s:+20%"]))
    load = [x for x in cmp_.cases if x.phase == "load"][0]
    assert load.id == "load/auto/auto"
    m = {x.metric: x for x in load.metrics}
    assert m["load_s"].verdict == REGRESSION and m["load_s"].p_value is None and "too few samples" in m["load_s"].note
    assert m["load_peak_bytes"].verdict == UNCHANGED
    assert cmp_.failed and len(cmp_.untested) == 1
    # Within 40% it passes.
    assert not compare(b, c, parse_thresholds(["load_s:+40%"])).failed


def test_bad_alpha():
    with pytest.raises(UserError, match="alpha"):
        compare(make_results(), make_results(), alpha=1.5)


# ---- an old results file ----


def test_old_schema_0_upgraded_and_compared(tmp_path):
    p = old_v0_file(tmp_path, {"decode_tok_s": DECODE_BASE}, finished_at="2024-12-01T01:00:00+00:00")
    c = save_results(tmp_path, "c.json", make_results({KEY: {"decode_tok_s": DECODE_SLOW}}, run_id="run-cur", loads=[]))
    r = invoke("compare", str(p), c, "--format", "json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["cases"][0]["id"] == KEY.id
    m = doc["cases"][0]["metrics"][0]
    assert m["base"] == pytest.approx(100.15) and m["verdict"] == REGRESSION
    assert doc["env_differences"]["torch"] == {"base": "2.10.0", "current": "2.11.0"}


def test_help_names_the_test_and_has_an_example():
    r = invoke("compare", "--help")
    assert "Mann-Whitney" in r.stdout and "Example:" in r.stdout and "gptoss compare" in r.stdout


def test_same_run_on_both_sides_is_pointed_out(tmp_path):
    b = save_results(tmp_path, "b.json", make_results())
    r = invoke("compare", b, b)
    assert r.exit_code == 0 and "BASE and CURRENT are the same run (run-base)" in r.stdout
    c = save_results(tmp_path, "c.json", make_results(run_id="other"))
    assert "same run" not in invoke("compare", b, c).stdout


def test_skipped_case_is_not_compared_nor_failed():
    b = make_results({KEY: {"decode_tok_s": DECODE_BASE}, KEY2: {"decode_tok_s": DECODE_BASE}})
    c = make_results({KEY: {"decode_tok_s": DECODE_BASE}, KEY2: {}}, run_id="run-cur", statuses={KEY2: "skipped"})
    cmp_ = compare(b, c)
    assert not cmp_.failed
    assert {x.id: x.verdict for x in cmp_.cases}[KEY2.id] == "not run"


def test_compare_shows_the_confidence_interval_of_each_median():
    from bench.tracking.compare import compare_metric
    from reports.compare import _with_ci

    many = [100.0, 101.0, 99.5, 100.5, 100.2, 99.8, 100.1, 100.7, 99.2, 100.4]
    m = compare_metric("decode_tok_s", many, [95.0, 96.0, 94.0], None)
    assert m.base_ci == (99.5, 100.7) and m.current_ci is None  # 3 samples: no 95% interval
    assert m.to_dict()["base_ci"] == [99.5, 100.7]
    assert _with_ci(m.base, m.base_ci, m.unit) == "100 tok/s [99.5 tok/s, 101 tok/s]"
    assert _with_ci(m.current, m.current_ci, m.unit) == "95.0 tok/s"
