"""reports/: every fixture renders every section; tables, plots, HTML, CSV, CLI and edge cases.

The fixtures in tests/fixtures are test data written by tests/fixtures/make_fixtures.py, not
measurements. Rendering is the slow part (~1-2 s a report on 2 cores), so each report is rendered
once per module and the tests read the files it wrote.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

import reports
from bench.results.errors import UserError
from bench.results import (
    CaseKey,
    CaseResult,
    LoadRecord,
    ModelInfo,
    Results,
    ResultsError,
    json_schema,
    load,
    save,
    schema_version,
)
from bench.results.stats import Stat
from reports import tables as T
from reports.plots import BUILDERS, roofline_tok_s
from reports.runs import build_runset
from reports.units import display_unit, fmt, fmt_spread

FIX = Path(__file__).parent / "fixtures"
SINGLE = ["gpu_h100", "gpu_h200", "cpu_tiny", "sweep_oom", "natural", "old_v0"]
ALL_PLOTS = {"decode_speed", "ttft_per_effort", "itl_distribution", "memory", "load_breakdown", "roofline", "harmony_channels", "time_to_final"}
RENDERED = [n for n in SINGLE if n != "gpu_h200"]  # (gpu_h200 renders within "compare")
SECTIONS = ["Model and run", "Warnings", "Environment", "Weights path", "Results", "Case status", "Plots"]


def fixture(name: str) -> Path:
    return FIX / f"{name}.json"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """name -> (ReportFiles, report.md text, report.html text), rendered once."""
    out = {}
    jobs = {name: [fixture(name)] for name in RENDERED}
    jobs["compare"] = [fixture("gpu_h100"), fixture("gpu_h200")]
    for name, inputs in jobs.items():
        files = reports.render(inputs if len(inputs) > 1 else inputs[0], tmp_path_factory.mktemp(name))
        out[name] = (files, files.markdown.read_text(), files.html.read_text())
    return out


def md_section(md: str, title: str) -> str:
    """The text of one '## title' section (up to the next '## ')."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", md, re.S | re.M)
    assert m, f"no section {title!r}"
    return m.group(1)


def md_table_after(md: str, heading: str) -> list[list[str]]:
    """The rows (header first, separator dropped) of the first table after a '### heading'."""
    m = re.search(rf"^### {re.escape(heading)}\n\n((?:\|.*\|\n)+)", md, re.M)
    assert m, f"no table under {heading!r}"
    rows = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in m.group(1).strip().splitlines()]
    return [rows[0]] + rows[2:]


# --------------------------------------------------------------------------------------------
# Fixtures are valid, reproducible test data
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SINGLE)
def test_fixture_is_valid_against_the_schema(name):
    doc = json.loads(fixture(name).read_text())
    assert doc["run_id"].startswith("fixture-")
    if name == "old_v0":
        assert schema_version(doc) == 0
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, json_schema())  # the old layout is not version 1 ...
        assert load(fixture(name)).cases  # ... and is upgraded on load
    else:
        jsonschema.Draft202012Validator(json_schema()).validate(doc)


def test_fixtures_are_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIX / "make_fixtures.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert set(gen.FIXTURES) == {f"{n}.json" for n in SINGLE}
    for name, make in gen.FIXTURES.items():
        assert json.loads((FIX / name).read_text()) == json.loads(gen.dump(make())), f"{name} is stale: run make_fixtures.py"


# --------------------------------------------------------------------------------------------
# Every fixture renders every section
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RENDERED + ["compare"])
def test_every_section_and_plot_accounted_for(rendered, name):
    files, md, html = rendered[name]
    for title in SECTIONS[1:]:
        assert f"\n## {title}\n" in md
        assert f"<h2>{title}</h2>" in html
    assert ("## Runs compared" in md) == (name == "compare")
    # every plot is either drawn (PNG written, linked from the Markdown, inline in the HTML) or
    # skipped with a reason listed in the report
    drawn = {p.stem for p in files.plots}
    assert drawn | set(files.skipped) == ALL_PLOTS and not drawn & set(files.skipped)
    for png in files.plots:
        assert png.is_file() and png.stat().st_size > 8_000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.name})" in md
    assert len(re.findall(r"<svg\b", html)) == html.count('class="gptoss-plot"') == len(drawn)
    plots = md_section(md, "Plots")
    for name_, why in files.skipped.items():
        assert why in plots
    assert files.csv.is_file()


def test_gpu_run_tables_show_only_varying_columns(rendered):
    _, md, _ = rendered["gpu_h100"]
    speed = md_table_after(md, "Speed")
    assert speed[0][:3] == ["effort", "out", "n"]
    for constant in ("prompt", "batch", "cache", "mode", "quant", "attn", "weights", "conc", "run"):
        assert constant not in speed[0]
    assert "decode (tok/s)" in speed[0] and "TTFT (ms)" in speed[0] and "of roofline (%)" in speed[0]
    assert "new tokens" not in speed[0]  # fixed mode: it would repeat `out`
    assert len(speed) == 1 + 6
    assert [r[0] for r in speed[1:]] == ["low", "low", "medium", "medium", "high", "high"]
    assert all(re.fullmatch(r"\d+(\.\d+)? ± \d+(\.\d+)?", r[3]) for r in speed[1:])
    assert "Every case: fixed mode, dynamic cache" in md and "128-token prompt" in md
    memory = md_table_after(md, "Memory")
    assert "NVML used (GiB)" in memory[0] and "KV cache (MiB)" in memory[0]
    weights = md_section(md, "Weights path")
    assert "MXFP4 kernels ran (Mxfp4GptOssExperts)" in weights
    assert "| download | load | first token (cold) |" in weights
    assert "[contention] Another process (pid 4242)" in md_section(md, "Warnings")
    env = md_section(md, "Environment")
    assert "| GPU | NVIDIA H100 80GB HBM3 |" in env and "| memory bandwidth | 3.35 TB/s (spec sheet) |" in env
    assert "Every case finished with measurements." in md_section(md, "Case status")
    assert "## Plots" in md and "Partial results" not in md


def test_gpu_run_values_are_the_medians(rendered):
    _, md, _ = rendered["gpu_h100"]
    r = load(fixture("gpu_h100"))
    case = r.case(CaseKey("medium", 512, 128))
    s = case.metrics["decode_tok_s"]
    row = next(x for x in md_table_after(md, "Speed")[1:] if x[:2] == ["medium", "512"])
    assert row[3] == fmt_spread(s.median, s.stdev, s.n)
    t = case.metrics["ttft_s"]
    assert row[4] == fmt_spread(t.median * 1e3, t.stdev * 1e3, t.n)


def test_cpu_run_skips_gpu_only_plots_with_a_reason(rendered):
    files, md, _ = rendered["cpu_tiny"]
    assert "roofline" in files.skipped and "CPU run" in files.skipped["roofline"]
    assert "harmony_channels" in files.skipped and "time_to_final" in files.skipped
    plots = md_section(md, "Plots")
    assert "### Not plotted" in plots and "a CPU run has no GPU memory-bandwidth roofline" in plots
    assert "not shown: NVML used (whole device): no NVML reading" in plots  # memory plot drawn without it
    memory = md_table_after(md, "Memory")
    assert memory[0] == ["effort", "out", "n", "KV cache (MiB)"]
    weights = md_section(md, "Weights path")
    assert "fell back to bf16 (GptOssExperts)" in weights and "compute capability 7.5" in weights
    warnings = md_section(md, "Warnings")
    for code in ("[synthetic]", "[cpu]", "[fallback]"):
        assert code in warnings
    assert "| device | cpu |" in md_section(md, "Environment")
    assert "| synthetic weights | yes |" in md


def test_sweep_shows_oom_error_and_skipped_cases(rendered):
    files, md, html = rendered["sweep_oom"]
    speed = md_table_after(md, "Speed")
    assert speed[0][:3] == ["cache", "batch", "n"]
    assert "effort" not in speed[0] and "out" not in speed[0]
    assert "total (tok/s)" in speed[0]
    assert len(speed) == 1 + 4  # the four measured cases only
    status = md_section(md, "Case status")
    assert "4 ok, 1 error, 2 skipped, 1 oom" in status
    assert "| static | 32 | oom | CUDA out of memory. Tried to allocate 4.50 GiB." in status
    assert "| dynamic | 32 | error | RuntimeError: Triton Error [CUDA]: out of resource" in status
    assert status.count("| skipped | skipped: batch 32 already failed with this cache |") == 2
    assert "> **Partial results.** This run is incomplete (complete=false)" in md
    assert "Partial results." in html and 'class="bad"' in html
    warnings = md_section(md, "Warnings")
    assert "[interrupted]" in warnings and "(case medium/out256/in512/b8/fixed/dynamic/auto/auto/c1)" in warnings
    # the batch sweep puts batch size on the decode plot's x axis
    assert "Decode speed against batch size" in html
    # the static-cache batch-8 case has no NVML reading: a dash in its cell, not a crash
    memory = md_table_after(md, "Memory")
    row = next(r for r in memory[1:] if r[:2] == ["static", "8"])
    assert row[memory[0].index("NVML used (GiB)")] == "—"


def test_natural_run_has_channels(rendered):
    files, md, _ = rendered["natural"]
    assert not files.skipped
    channels = md_table_after(md, "Harmony channels (natural mode)")
    assert channels[0] == ["effort", "n", "analysis tokens", "final tokens", "time to final (s)"]
    assert [r[0] for r in channels[1:]] == ["low", "medium", "high"]
    analysis = [float(r[2].split(" ± ")[0]) for r in channels[1:]]
    assert analysis == sorted(analysis)  # more effort, more reasoning tokens (fixture data)
    assert "new tokens" in md_table_after(md, "Speed")[0]  # natural mode: not implied by `out`
    assert "Every case: natural mode" in md and "4096 new tokens" in md


def test_old_schema_version_is_upgraded(rendered):
    files, md, _ = rendered["old_v0"]
    raw = json.loads(fixture("old_v0").read_text())
    assert "env_summary" not in raw and "length" in raw["cases"][0]["key"]
    env = md_section(md, "Environment")
    assert "| GPU | Tesla T4 |" in env and "| transformers | 4.56.0 |" in env  # summarised on upgrade
    speed = md_table_after(md, "Speed")
    assert speed[0][:2] == ["effort", "out"] and {r[1] for r in speed[1:]} == {"64", "256"}
    samples = raw["cases"][0]["samples"]["decode_tok_s"]
    s = Stat.of(samples)
    assert speed[1][speed[0].index("decode (tok/s)")] == fmt_spread(s.median, s.stdev, s.n)
    assert "[colab]" in md_section(md, "Warnings")
    assert "itl_distribution" in files.skipped and "memory" in files.skipped


def test_comparison_is_grouped_by_what_differs(rendered):
    files, md, html = rendered["compare"]
    runs = md_section(md, "Runs compared")
    header = md_table_after("### x\n\n" + runs[runs.index("| run |"):], "x")[0]
    assert header == ["run", "run id", "GPU", "transformers", "kernels", "cases", "complete"]
    assert "The runs differ in: GPU, transformers, kernels." in runs
    assert "| **transformers** | 5.17.0 | 5.20.0 |" in md_section(md, "Environment")
    assert "| **torch** |" not in md and "| torch | 2.11.0 | 2.11.0 |" in md
    speed = md_table_after(md, "Speed")
    assert speed[0][:3] == ["run", "effort", "out"]
    assert {r[0] for r in speed[1:]} == {"H100 80GB HBM3", "H200"}
    side = md_table_after(md, "Side by side: decode")
    assert side[0] == ["effort", "out", "H100 80GB HBM3", "H200", "H200 vs H100 80GB HBM3"]
    assert len(side) == 1 + 6 and all(re.fullmatch(r"[+-]\d+\.\d%", r[-1]) for r in side[1:])
    assert "Side by side: TTFT" in md
    assert "H100 80GB HBM3: [contention]" in md_section(md, "Warnings")
    assert {p.stem for p in files.plots} >= {"decode_speed", "roofline", "load_breakdown"}


def test_run_labels_name_only_fields_that_tell_runs_apart():
    runs = [load(fixture(n)) for n in ("gpu_h100", "cpu_tiny", "natural")]
    rs = build_runset(runs)
    assert [r.label for r in rs.runs] == ["H100 80GB HBM3 · fixed mode", "CPU · fixed mode", "H100 80GB HBM3 · natural mode"]
    assert [f.name for f in rs.differing][:3] == ["GPU", "model", "weights"]
    # key fields that vary only between runs are run properties: plots do not repeat them per case
    assert "mode" in rs.varying and "mode" not in rs.within and "effort" in rs.within
    # identical runs: the run id tells them apart; identical run ids: a number
    twin = load(fixture("gpu_h100"))
    twin.run_id = "fixture-h100-again"
    assert [r.label for r in build_runset([runs[0], twin]).runs] == ["fixture-h100-mxfp4", "fixture-h100-again"]
    twin.run_id = runs[0].run_id
    twin.env_summary = dict(twin.env_summary, torch="2.12.0")
    assert [r.label for r in build_runset([runs[0], twin]).runs] == ["torch 2.11.0", "torch 2.12.0"]
    assert [r.label for r in build_runset([runs[0], load(fixture("gpu_h100"))]).runs] == [
        "fixture-h100-mxfp4 (#1)",
        "fixture-h100-mxfp4 (#2)",
    ]


# --------------------------------------------------------------------------------------------
# HTML: self-contained, scoped, phone-ready
# --------------------------------------------------------------------------------------------

REMOTE = re.compile(r"""(?:\b(?:src|href|xlink:href|action|poster|srcset)\s*=\s*["']?\s*(?:https?:)?//)|(?:url\(\s*["']?\s*(?:https?:)?//)|@import""", re.I)


@pytest.mark.parametrize("name", RENDERED + ["compare"])
def test_html_fetches_nothing(rendered, name):
    _, _, html = rendered[name]
    assert not REMOTE.search(html)
    assert "<script" not in html.lower() and "<link" not in html.lower() and "<img" not in html.lower()
    assert "<!doctype" not in html.lower()[20:] and "<?xml" not in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "duplicate ids: two inline SVGs would share clip paths"
    for ref in re.findall(r'(?:href="#|url\(#)([^")]+)', html):
        assert ref in ids, f"dangling reference #{ref}"


def test_the_remote_pattern_catches_remote_resources():
    for bad in ('<img src="https://x/y.png">', "<a href='http://x'>", "background:url(//cdn/x.png)", '@import "x.css";', '<use xlink:href="https://x#a"/>'):
        assert REMOTE.search(bad), bad
    for ok in ('<a href="#gr-plots">', 'xmlns="http://www.w3.org/2000/svg"', "url(#gr-p1)"):
        assert not REMOTE.search(ok), ok


def _css_selectors(css: str) -> list[str]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    css = re.sub(r"@media[^{]*\{", "", css)
    return [sel.strip() for block in re.findall(r"([^{}]+)\{[^{}]*\}", css) for sel in block.split(",") if sel.strip()]


def test_notebook_fragment_scopes_every_style(rendered):
    fragment = reports.report_html(fixture("cpu_tiny"))
    assert fragment.startswith('<div class="gptoss-report" id="gr')
    assert "<html" not in fragment and "<body" not in fragment and "viewport" not in fragment
    styles = re.findall(r"<style[^>]*>(.*?)</style>", fragment, re.S)
    assert len(styles) == 1, "an SVG's own <style> would apply to the whole notebook page"
    selectors = _css_selectors(styles[0])
    assert selectors and all(s.startswith(".gptoss-report") for s in selectors), selectors
    # the standalone page adds only html/body rules, outside the wrapper
    _, _, html = rendered["cpu_tiny"]
    page_css = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert page_css[0] == "html,body{margin:0;padding:0;background:#fff}"


def test_show_displays_in_a_notebook_or_returns_html(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setitem(sys.modules, "IPython.display", None)
    text = reports.show(fixture("cpu_tiny"))
    assert isinstance(text, str) and text.startswith('<div class="gptoss-report"') and "<svg" in text

    shown = []
    fake = types.ModuleType("IPython.display")

    class HTML:
        def __init__(self, data):
            self.data = data

    fake.HTML = HTML
    fake.display = shown.append
    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
    monkeypatch.setitem(sys.modules, "IPython.display", fake)
    assert reports.show([load(fixture("cpu_tiny"))]) is None
    assert len(shown) == 1 and isinstance(shown[0], HTML) and "synthetic:tiny" in shown[0].data


# --------------------------------------------------------------------------------------------
# CSV, formats, inputs, partial runs
# --------------------------------------------------------------------------------------------


def test_case_csv_has_raw_values(rendered):
    files, _, _ = rendered["sweep_oom"]
    rows = list(csv.DictReader(io.StringIO(files.csv.read_text())))
    assert len(rows) == 8
    oom = next(r for r in rows if r["status"] == "oom")
    assert oom["batch_size"] == "32" and oom["cache"] == "static" and "out of memory" in oom["message"]
    assert oom["decode_tok_s_median"] == ""
    r = load(fixture("sweep_oom"))
    ok = next(x for x in rows if x["status"] == "ok" and x["batch_size"] == "8" and x["cache"] == "dynamic")
    s = r.case(CaseKey("medium", 256, 512, batch_size=8, cache="dynamic")).metrics["decode_tok_s"]
    assert float(ok["decode_tok_s_median"]) == s.median and float(ok["decode_tok_s_p95"]) == s.p95
    assert ok["decode_tok_s_n"] == "3" and ok["case"] == "medium/out256/in512/b8/fixed/dynamic/auto/auto/c1"


def test_formats_write_only_what_was_asked(tmp_path):
    files = reports.render(fixture("cpu_tiny"), tmp_path / "md", formats=["md"])
    assert [p.name for p in files.paths()] == ["report.md"]
    assert "Plots were not requested." in files.markdown.read_text()
    assert sorted(p.name for p in (tmp_path / "md").iterdir()) == ["report.md"]

    files = reports.render(fixture("cpu_tiny"), tmp_path / "mdhtml", formats=("md", "html"))
    assert files.plots == [] and files.html.is_file() and "<svg" in files.html.read_text()
    assert "(drawn in report.html; PNG files were not requested)" in files.markdown.read_text()

    with pytest.raises(UserError, match="unknown report format pdf; choose from md, html, png, csv"):
        reports.render(fixture("cpu_tiny"), tmp_path / "x", formats=["pdf"])


def test_inputs_files_folders_and_errors(tmp_path):
    for name in ("gpu_h100", "cpu_tiny"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "results.json").write_text(fixture(name).read_text())
    assert reports.resolve_paths([tmp_path / "runs" / "cpu_tiny"]) == [tmp_path / "runs" / "cpu_tiny" / "results.json"]
    assert len(reports.resolve_paths([tmp_path / "runs"])) == 2
    runs, sources = reports.load_all([tmp_path / "runs", load(fixture("natural"))])
    assert [r.run_id for r in runs] == ["fixture-cpu-tiny", "fixture-h100-mxfp4", "fixture-h100-natural"]
    assert sources[2] is None and sources[0].endswith("results.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="holds no results.json"):
        reports.resolve_paths([tmp_path / "empty"])
    with pytest.raises(UserError, match="no results to report on"):
        reports.load_all([])
    with pytest.raises(TypeError):
        reports.load_all([42])


def test_unwritable_output_folder_is_one_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"cannot create the report folder .*; pass --out a folder you can write to\."):
        reports.render(fixture("cpu_tiny"), blocker / "sub", formats=["md"])


def test_partial_run_without_cases_loads_or_metrics_renders(tmp_path):
    r = Results(model=ModelInfo("synthetic:tiny", "synthetic", synthetic=True))
    files = reports.render(r, tmp_path / "empty", formats=["md", "html", "csv"])
    md = files.markdown.read_text()
    assert set(files.skipped) == ALL_PLOTS and files.plots == []
    assert "No case has measurements yet." in md and "No model load was recorded" in md
    assert "Partial results." in md and "No validity warnings were recorded." in md
    assert files.csv.read_text().count("\n") == 1  # the header only

    r.loads.append(LoadRecord("mxfp4", "auto", status="error", message="OSError: model.safetensors is truncated"))
    r.add_case(CaseResult(CaseKey("low", 8, 4), "ok"))  # finished, nothing measured
    r.add_case(CaseResult(CaseKey("low", 16, 4), "ok", metrics={"ttft_s": Stat.of([0.1])}))
    r.add_case(CaseResult(CaseKey("high", 16, 4), "error", "ValueError: boom"))
    path = save(r, tmp_path / "partial.json")  # the bench writes after every case: still valid
    files = reports.render(path, tmp_path / "partial")
    md = files.markdown.read_text()
    assert [p.stem for p in files.plots] == ["ttft_per_effort"]
    assert "load error: OSError: model.safetensors is truncated" in md
    status = md_section(md, "Case status")
    assert "| low | 8 | ok | finished without any measurement |" in status
    assert "| high | 16 | error | ValueError: boom |" in status
    assert md_table_after(md, "Speed")[1] == ["low", "16", "1", "100"]  # n=1: no spread shown


def test_a_failing_plot_costs_only_that_plot(tmp_path, monkeypatch):
    def broken(rs):
        raise RuntimeError("kaboom")

    broken.__name__ = "plot_memory"
    monkeypatch.setattr("reports.plots.BUILDERS", [broken] + [b for b in BUILDERS if b.__name__ != "plot_memory"])
    files = reports.render(fixture("cpu_tiny"), tmp_path, formats=["md"])
    assert files.skipped == {} and files.plots == []  # md only: no plots drawn at all
    files = reports.render(fixture("cpu_tiny"), tmp_path, formats=["md", "png"])
    assert "could not be drawn (RuntimeError: kaboom)" in files.skipped["memory"]
    assert "could not be drawn (RuntimeError: kaboom)" in files.markdown.read_text()
    assert "decode_speed" in {p.stem for p in files.plots}


def test_rendering_never_touches_pyplot_or_the_backend(tmp_path):
    code = (
        # (matplotlib.get_backend() would itself import pyplot: read the raw rcParam instead)
        "import sys, matplotlib; raw = lambda: dict.__getitem__(matplotlib.rcParams, 'backend'); "
        "before = raw(); import reports; "
        f"reports.render({str(fixture('cpu_tiny'))!r}, {str(tmp_path)!r}, formats=['png']); "
        "print('matplotlib.pyplot' in sys.modules, raw() == before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
    assert (tmp_path / "decode_speed.png").is_file()


# --------------------------------------------------------------------------------------------
# Units, roofline, the bench's summary table
# --------------------------------------------------------------------------------------------


def test_units_and_number_format():
    assert display_unit("s", [0.08, 0.5]).label == "ms" and display_unit("s", [0.08, 1.5]).label == "s"
    assert display_unit("bytes", [3 * 1024**2]).label == "MiB" and display_unit("bytes", [14 * 1024**3]).label == "GiB"
    assert display_unit("fraction", [0.5])(0.5) == 50
    assert fmt(12.43) == "12.4" and fmt(1234.5) == "1234" and fmt(0.08123) == "0.0812" and fmt(None) == "—"
    assert fmt_spread(12.43, 0.234, 5) == "12.4 ± 0.2" and fmt_spread(12.43, 0.0, 1) == "12.4" and fmt_spread(None, 1, 2) == "—"


def test_roofline_is_bandwidth_over_bytes_per_token():
    r = load(fixture("gpu_h100"))
    assert roofline_tok_s(r, "mxfp4") == pytest.approx(3.35e12 / 3.71e9)
    assert roofline_tok_s(r, "bf16") == pytest.approx(3.35e12 / 7.22e9)
    assert roofline_tok_s(r, None) is None
    assert roofline_tok_s(load(fixture("cpu_tiny")), "bf16") is None  # no bandwidth known


def test_summary_table_lists_every_case_with_its_status():
    text = T.summary_table(load(fixture("sweep_oom")))
    lines = text.splitlines()
    assert lines[0].startswith("| cache | batch | status | decode (tok/s) |")
    assert len(lines) == 2 + 8
    assert "| static | 32 | oom | — |" in text
    plain = T.summary_table(load(fixture("gpu_h100")), markdown=False)
    assert "|" not in plain and plain.splitlines()[0].split()[:3] == ["effort", "out", "status"]
    assert T.summary_table(Results(model=ModelInfo("x", "synthetic"))) == "No case has a result yet."


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _cli(*args):
    from bench.cli import main

    return CliRunner().invoke(main, ["report", *map(str, args)])


def test_cli_writes_the_report_and_prints_paths(tmp_path):
    res = _cli(fixture("cpu_tiny"), fixture("sweep_oom"), "--out", tmp_path / "r", "--format", "md", "--format", "csv")
    assert res.exit_code == 0, res.output
    printed = [Path(x) for x in res.output.splitlines() if x.endswith((".md", ".csv"))]
    assert printed == [tmp_path / "r" / "report.md", tmp_path / "r" / "cases.csv"]
    assert all(p.is_file() for p in printed)
    assert "## Runs compared" in printed[0].read_text()


def test_cli_default_out_is_beside_a_single_results_file(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(fixture("cpu_tiny").read_text())
    res = _cli(tmp_path / "run", "-f", "md")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "report" / "report.md").is_file()


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{ not json", "is not valid JSON (line 1, column 3): the file is damaged"),
        ('{"schema": "gptoss-harness/results/9"}', "uses results schema version 9, newer than this gptoss-harness understands"),
        ('{"hello": 1}', 'is not a gptoss-harness results file (no "schema"'),
        ('{"schema": "gptoss-harness/results/1"}', "is not a valid gptoss-harness results file"),
    ],
)
def test_cli_bad_files_end_in_one_sentence(tmp_path, content, expected):
    bad = tmp_path / "results.json"
    bad.write_text(content)
    res = _cli(bad, "--out", tmp_path / "r")
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0] and errors[0].endswith(".")
    assert "Traceback" not in res.output
    assert not (tmp_path / "r").exists()


def test_cli_missing_path(tmp_path):
    res = _cli(tmp_path / "nope.json")
    assert res.exit_code == 2 and "does not exist; pass the results.json" in res.output


def test_cli_format_choices_are_the_renderers_formats():
    # The command keeps its own copy (bench/cli may import only click and stdlib at top).
    from bench.cli.report import FORMAT_CHOICES
    from reports import FORMATS

    assert FORMAT_CHOICES == FORMATS


@pytest.mark.parametrize("names", [["gpu_h100"], ["natural"], ["sweep_oom", "cpu_tiny"]])
def test_every_plot_has_a_title_axis_labels_and_units(names):
    import matplotlib

    from reports.plots import STYLE

    rs = build_runset([load(fixture(n)) for n in names])
    with matplotlib.rc_context(STYLE):
        plots = [build(rs) for build in BUILDERS]
    drawn = [p for p in plots if p.figure is not None]
    assert drawn
    for p in drawn:
        fig = p.figure
        assert fig._suptitle is not None and fig._suptitle.get_text() == p.title
        ax = fig.axes[0]
        xlabel, ylabel = ax.get_xlabel(), ax.get_ylabel()
        assert xlabel and ylabel, p.name
        # the value axis carries its unit in parentheses (categories: effort, case, load)
        value_label = ylabel if xlabel in ("reasoning effort",) or xlabel.startswith(("output length", "batch size")) else xlabel
        assert re.search(r"\((ms|s|tok/s[^)]*|GiB|MiB|median)\)", value_label), (p.name, xlabel, ylabel)
    for p in plots:
        assert p.figure is not None or p.skipped


def test_every_case_metric_has_a_label_and_a_table():
    from bench.results import CASE_METRICS
    from reports.tables import CHANNEL_METRICS, ENERGY_METRICS, MEMORY_METRICS, METRIC_LABELS, SERVING_METRICS, SPEED_METRICS

    assert set(CASE_METRICS) <= set(METRIC_LABELS)
    assert set(CASE_METRICS) == set(SPEED_METRICS + SERVING_METRICS + MEMORY_METRICS + ENERGY_METRICS + CHANNEL_METRICS)


def test_headline_sets_generate_against_graph_on_the_same_gpu():
    from reports.document import build_document
    from reports.runs import build_runset
    from tests.factories import make_results

    gen = CaseKey("low", 512, 128, decode="generate")
    gen_static = CaseKey("low", 512, 128, cache="static", decode="generate")
    graph = CaseKey("low", 512, 128, cache="static", decode="graph")
    lone = CaseKey("low", 128, 128, decode="generate")  # no graph twin: no headline row
    res = make_results({
        gen: {"decode_tok_s": [14.0, 15.0, 16.0], "roofline_frac": [0.012], "gpu_busy_frac": [0.08]},
        gen_static: {"decode_tok_s": [15.5, 15.6], "roofline_frac": [0.013], "gpu_busy_frac": [0.09]},
        graph: {"decode_tok_s": [180.0, 181.0], "roofline_frac": [0.155], "gpu_busy_frac": [0.93]},
        lone: {"decode_tok_s": [15.0]},
    })
    rs = build_runset([res])
    table = T.decode_headline(rs)
    assert table is not None and len(table.rows) == 1
    row = dict(zip(table.headers[:4], table.rows[0][:4]))
    assert row == {"weights": "mxfp4", "batch": "b1", "out": "512", "generate cache": "static"}  # the faster generate
    assert table.rows[0][4:] == ["15.6 tok/s", "1.30 %", "9.00 %", "180 tok/s", "15.5 %", "93.0 %", "11.6×"]
    doc = build_document(rs, [])
    assert [s.id for s in doc.sections][:2] == ["run", "headline"]
    # without graph cases there is no headline
    only_generate = make_results({gen: {"decode_tok_s": [15.0]}})
    assert T.decode_headline(build_runset([only_generate])) is None
