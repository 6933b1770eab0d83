import json

import pytest

from bench import results as R
from bench.results.stats import Stat
from tests.factories import old_v0_file


def _results():
    res = R.Results(model=R.ModelInfo(id="synthetic:tiny", source="synthetic", synthetic=True), run_id="t1")
    res.loads.append(R.LoadRecord(quant="auto", attn="eager", weights_path="bf16", metrics={"load_s": 0.5}))
    res.add_case(R.CaseResult(key=R.CaseKey("low", 8, 64), metrics={"decode_tok_s": Stat.of([10.0, 11.0])}))
    res.add_case(R.CaseResult(key=R.CaseKey("high", 8, 64), status="oom", message="OutOfMemoryError: CUDA out of memory"))
    return res


def test_round_trip_validates(tmp_path):
    path = R.save(_results(), tmp_path / "results.json")
    back = R.load(path)
    assert back.to_dict() == _results().to_dict() | {"created_at": back.created_at}
    R.validate(json.loads(path.read_text()))
    assert R.load(tmp_path).run_id == "t1"  # a folder means its results.json


def test_add_case_replaces_same_key():
    res = _results()
    res.add_case(R.CaseResult(key=R.CaseKey("high", 8, 64), status="ok"))
    assert [c.status for c in res.cases] == ["ok", "ok"]
    assert res.done_keys() == {R.CaseKey("low", 8, 64), R.CaseKey("high", 8, 64)}


def test_save_is_atomic_and_refuses_invalid(tmp_path):
    path = tmp_path / "results.json"
    R.save(_results(), path)
    before = path.read_text()
    bad = _results()
    bad.cases[0].status = "exploded"
    with pytest.raises(R.ResultsError):
        R.save(bad, path)
    assert path.read_text() == before  # the good file survives
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{not json", "not valid JSON"),
        ('{"schema": "something/else"}', "not a gptoss-harness results file"),
        ('{"schema": "gptoss-harness/results/99"}', "newer than this gptoss-harness"),
        ('{"schema": "gptoss-harness/results/1", "cases": 3}', "not a valid gptoss-harness results file"),
        ('[1, 2]', "not a gptoss-harness results file"),
    ],
)
def test_bad_files_are_one_sentence(tmp_path, content, fragment):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(R.ResultsError) as e:
        R.load(path)
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(R.ResultsError, match="does not exist"):
        R.load(tmp_path / "nope.json")


def test_version_0_is_upgraded(tmp_path):
    path = old_v0_file(tmp_path, {"decode_tok_s": [10.0, 12.0, 11.0]}, gpu="Tesla T4", torch="2.8.0", output_len=128)
    res = R.load(path)
    case = res.cases[0]
    assert case.key.output_len == 128
    assert case.metrics["decode_tok_s"].median == 11.0
    assert res.env_summary["gpu"] == "Tesla T4" and res.env_summary["torch"] == "2.8.0"


def test_metric_registry_is_the_schema_enum():
    schema = R.json_schema()
    case_names = schema["$defs"]["case"]["properties"]["metrics"]["propertyNames"]["enum"]
    load_names = schema["$defs"]["load"]["properties"]["metrics"]["propertyNames"]["enum"]
    assert sorted(case_names) == sorted(R.CASE_METRICS)
    assert sorted(load_names) == sorted(R.LOAD_METRICS)


def test_summary_and_differences():
    snap = {"facts": {"gpus": [{"name": "NVIDIA H100 80GB HBM3"}], "driver": {"version": "580.1"},
                      "torch": {"cuda_build": "13.0"}, "packages": {"torch": {"version": "2.11.0"},
                      "transformers": {"version": "5.17.0"}}, "platform": {"python": "3.12.3", "system": "Linux", "cpu": "Intel(R) Xeon(R) Platinum 8480+"}}}
    s = R.summarize_environment(snap)
    assert s["gpu"] == "NVIDIA H100 80GB HBM3" and s["device"] == "cuda" and s["cuda"] == "13.0"
    assert s["cpu"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert R.env_differences(s, dict(s, cpu="AMD EPYC 7R13")) == {"cpu": ("Intel(R) Xeon(R) Platinum 8480+", "AMD EPYC 7R13")}
    other = dict(s, transformers="5.22.0")
    assert R.env_differences(s, other) == {"transformers": ("5.17.0", "5.22.0")}
    assert R.summarize_environment({})["device"] == "cpu"


def test_readme_names_every_metric():
    """`compare --fail-on` takes these names: the README's list must be complete."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert [m for m in R.METRICS if f"`{m}`" not in readme] == []
