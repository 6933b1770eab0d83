"""The CI flow on CPU with synthetic:tiny: bench -> compare -> history -> export, never failing on
CPU timing noise.

CPU timings on a shared runner swing by tens of percent between runs, so the CI gate uses wide
thresholds (decode -90%, TTFT +900%): the flow and its exit codes are exercised, the noise
cannot trip it, and a real collapse (a 20x slowdown) still does.
"""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from bench import results as R
from bench.cli import main
from bench.tracking.history import History
from tests.factories import save_results

CPU_ENV = {"device": "cpu", "gpu": None, "gpu_count": 0, "driver": None, "cuda": None, "torch": "2.13.0",
           "triton": None, "transformers": "5.23.0", "kernels": None, "python": "3.11.7", "platform": "Linux"}
KEY = R.CaseKey(effort="low", output_len=8, prompt_len=128, attn="eager")
WIDE = ["--fail-on", "decode_tok_s:-90%", "--fail-on", "ttft_s:+900%"]


def cpu_run(run_id: str, seed: int, slowdown: float = 1.0) -> R.Results:
    """A synthetic:tiny CPU run as `gptoss bench` writes it, with CPU-like noise (+-40%)."""
    rng = random.Random(seed)

    def noisy(center, n=5):
        return [center * rng.uniform(0.6, 1.4) for _ in range(n)]

    res = R.Results(
        model=R.ModelInfo(id="synthetic:tiny", source="synthetic", synthetic=True),
        env_summary=dict(CPU_ENV),
        run_id=run_id,
        tool_version="0.1.0",
        complete=True,
    )
    res.add_case(R.CaseResult(key=KEY, weights_path="bf16", metrics={
        "decode_tok_s": R.Stat.of([x / slowdown for x in noisy(60.0)]),
        "ttft_s": R.Stat.of([x * slowdown for x in noisy(0.05)]),
        "e2e_s": R.Stat.of([x * slowdown for x in noisy(0.17)]),
        "new_tokens": R.Stat.of([8] * 5),
    }))
    res.loads = [R.LoadRecord(quant="auto", attn="eager", weights_path="bf16", metrics={"load_s": 3.7 * rng.uniform(0.6, 1.4)})]
    res.warn("cpu", "measured on a CPU")
    res.warn("synthetic", "random weights")
    return res


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _flow(tmp_path, base: str, current: str) -> None:
    db = str(tmp_path / "history.sqlite")
    # compare: the gate, with the PR comment written beside it
    comment = tmp_path / "compare.md"
    r = invoke("compare", base, current, *WIDE, "--format", "markdown", "--out", str(comment))
    assert r.exit_code == 0, comment.read_text() if comment.exists() else r.output
    assert comment.read_text().startswith("### gptoss compare: PASS")
    r = invoke("compare", base, current, *WIDE, "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "pass"
    # history: add both (and one twice), list, show, plot
    for path, sha in ((base, "a" * 40), (current, "b" * 40), (current, "b" * 40)):
        r = invoke("history", "add", path, "--db", db, "--commit", sha, "--label", "ci")
        assert r.exit_code == 0, r.output
    r = invoke("history", "list", "--db", db)
    assert r.exit_code == 0 and len([x for x in r.stdout.splitlines() if " synthetic:tiny " in x]) == 2
    assert invoke("history", "show", "latest", "--db", db).exit_code == 0
    png = tmp_path / "trend.png"
    r = invoke("history", "plot", "--db", db, "--metric", "decode_tok_s", "--metric", "ttft_s", "--out", str(png))
    assert r.exit_code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    with History(db) as h:
        assert len(h.runs()) == 2 and h.integrity_check() == "ok"
    # export for dashboards
    out = tmp_path / "pb.json"
    assert invoke("export", current, "--format", "pytest-benchmark", "--out", str(out)).exit_code == 0
    assert json.loads(out.read_text())["benchmarks"]


def test_crafted_cpu_flow_passes_on_noise_and_trips_on_a_collapse(tmp_path):
    base = save_results(tmp_path, "base.json", cpu_run("base", seed=1))
    current = save_results(tmp_path, "current.json", cpu_run("current", seed=2))
    _flow(tmp_path, base, current)
    # The same gate fails on a 20x slowdown: the CI check is not a rubber stamp.
    slow = save_results(tmp_path, "slow.json", cpu_run("slow", seed=3, slowdown=20.0))
    r = invoke("compare", base, slow, *WIDE)
    assert r.exit_code == 1 and "REGRESSION" in r.stdout


@pytest.mark.parametrize("seed", range(20))
def test_wide_thresholds_never_trip_on_cpu_noise(tmp_path, seed):
    from bench.tracking.compare import compare, parse_thresholds

    th = parse_thresholds(["decode_tok_s:-90%", "ttft_s:+900%"])
    assert not compare(cpu_run("a", seed), cpu_run("b", seed + 100), th).failed


@pytest.mark.slow
def test_real_bench_flow(tmp_path):
    """Two real `gptoss bench` runs of synthetic:tiny on CPU through the same flow."""
    if "bench" not in main.commands:
        pytest.skip("the bench command is not registered in bench/cli.py yet")
    paths = []
    for name in ("base", "current"):
        out = tmp_path / name
        r = invoke("bench", "--model", "synthetic:tiny", "--device", "cpu", "--efforts", "low", "--lengths", "8",
                   "--prompt-lengths", "128", "--reps", "3", "--warmup", "1", "--attn", "eager", "--no-report",
                   "-q", "--out", str(out))
        assert r.exit_code == 0, r.output
        paths.append(str(out / "results.json"))
    _flow(tmp_path, *paths)
