"""The benchmarks page's measurement tool (bench.gpu_measure), run on CPU with synthetic:tiny.

On CPU there is no GPU time to find: this checks that both measurements run the real load and
generate path, make exactly the asked tokens, and write what the page is built from.
"""

import json

from bench import gpu_measure


def test_overhead_and_profile_run_and_write_their_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GPTOSS_CACHE", str(tmp_path / "cache"))  # the checkpoint, not the user's cache
    assert gpu_measure.main(["overhead", "--model", "synthetic:tiny", "--device", "cpu", "--new-tokens", "6",
                             "--pairs", "2", "--out", str(tmp_path)]) == 0
    over = json.loads((tmp_path / "overhead-bf16-dynamic.json").read_text())
    assert over["gpu"] == "cpu" and over["new_tokens"] == 6 and over["pairs"] == 2
    assert len(over["bare_tok_s"]) == len(over["instrumented_tok_s"]) == 2 and all(x > 0 for x in over["bare_tok_s"])
    assert over["overhead_frac"] == 1 - over["instrumented_median"] / over["bare_median"]

    assert gpu_measure.main(["profile", "--model", "synthetic:tiny", "--device", "cpu", "--cache", "dynamic",
                             "--new-tokens", "6", "--runs", "2", "--out", str(tmp_path)]) == 0
    prof = json.loads((tmp_path / "profile-bf16-dynamic.json").read_text())
    assert len(prof["bare_tok_s"]) == 2 and prof["wall_ms_per_token"] > 0
    assert prof["gpu_kernel_ms_per_token"] == 0 and prof["gpu_busy_frac"] == 0 and prof["top_kernels"] == []
    out = capsys.readouterr().out
    assert "overhead" in out and "GPU busy 0%" in out
