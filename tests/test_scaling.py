"""reports/scaling*: runs on different numbers of GPUs or layouts, grouped into families and held
against the ideal; the skip reasons; the figure, the tables and the report around them.

Runs are built by tests/factories.py (``layout_results``): test data, not measurements.
"""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

import reports
from bench.results import CaseKey, LoadRecord
from bench.results.layout import DeviceShare, Layout
from reports.runs import build_runset, layout_text
from reports.scaling import MEMORY, SPEED, busiest_peak, memory_table, scaling, speed_table
from reports.scaling_plot import builders_for, plot_scaling
from reports.tables import to_markdown
from tests.factories import GIB, layout_results, make_results, save_results

GEN = CaseKey("low", 128, 128)
GEN8 = CaseKey("low", 128, 128, batch_size=8)
GEN_STATIC = CaseKey("low", 128, 128, cache="static")
GRAPH = CaseKey("low", 128, 128, cache="static", decode="graph")


def speeds(gen: float, gen8: float | None = None, graph: float | None = None) -> dict:
    cases = {GEN: {"decode_tok_s": [gen * 0.99, gen, gen * 1.01]}}
    if gen8 is not None:
        cases[GEN8] = {"decode_tok_s": [gen8, gen8]}
    if graph is not None:
        cases[GRAPH] = {"decode_tok_s": [graph, graph]}
    return cases


def sweep():
    """1 GPU (generate and graph), expert parallel on 2 and 4, a bf16 pipeline on 2."""
    return [
        layout_results("single", 1, speeds(10.0, 60.0, graph=120.0)),
        layout_results("expert-parallel", 2, speeds(18.0, 100.0)),
        layout_results("expert-parallel", 4, speeds(30.0, 150.0)),
        layout_results("pipeline", 2, speeds(9.0), weights_path="bf16", weights_gib=217.6),
    ]


def point(sc, kind, layout, gpus, **family):
    found = [p for p in sc.points(kind) if p.layout == layout and p.gpus == gpus
             and all(getattr(p.family, k) == v for k, v in family.items())]
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------------------------
# Grouping and the ideal
# --------------------------------------------------------------------------------------------


def test_points_are_grouped_by_layout_weights_decode_and_batch():
    sc = scaling(build_runset(sweep()))
    assert sc.skipped is None
    assert [sc.label(SPEED, s) for s in sc.speed] == [
        "single · mxfp4 · generate · b1", "single · mxfp4 · generate · b8", "single · mxfp4 · graph · b1",
        "pipeline · bf16 · generate · b1",
        "expert-parallel · mxfp4 · generate · b1", "expert-parallel · mxfp4 · generate · b8",
    ]
    ep = next(s for s in sc.speed if s.layout == "expert-parallel" and s.family.batch_size == 1)
    assert [(p.gpus, p.value) for p in ep.points] == [(2, 18.0), (4, 30.0)]
    assert sc.varying(SPEED) == ["weights_path", "decode", "batch_size"]
    assert "synthetic:gpt-oss-120b" in sc.constant(SPEED) and "effort low" in sc.constant(SPEED)
    assert [sc.label(MEMORY, s) for s in sc.memory] == ["single · mxfp4", "pipeline · bf16", "expert-parallel · mxfp4"]


def test_the_ideal_is_linear_from_one_gpu_and_memory_one_over_n():
    sc = scaling(build_runset(sweep()))
    ref = sc.reference(SPEED, point(sc, SPEED, "expert-parallel", 4, batch_size=1).family)
    assert (ref.layout, ref.gpus, ref.value) == ("single", 1, 10.0)
    assert sc.ideal(SPEED, point(sc, SPEED, "expert-parallel", 4, batch_size=1)) == pytest.approx(40.0)
    assert sc.ideal(SPEED, point(sc, SPEED, "expert-parallel", 2, batch_size=8)) == pytest.approx(120.0)
    # memory: the busiest GPU after the load against 1/N of one GPU's
    one = point(sc, MEMORY, "single", 1)
    four = point(sc, MEMORY, "expert-parallel", 4)
    assert one.value == pytest.approx(60.8 * GIB, rel=1e-6)
    assert four.value == pytest.approx(60.8 * GIB * (0.06 + 0.94 / 4), rel=1e-6) and four.value > one.value / 4
    assert sc.ideal(MEMORY, four) == pytest.approx(one.value / 4)
    # ... and its peak in a case: the busiest GPU of info.gpus, not the sum over GPUs
    assert four.peak == pytest.approx(four.value + 2 * GIB * 8, rel=1e-6)


def test_a_family_on_one_gpu_count_has_no_ideal_and_says_so():
    sc = scaling(build_runset(sweep()))
    graph = point(sc, SPEED, "single", 1, decode="graph")
    bf16 = point(sc, SPEED, "pipeline", 2)
    assert sc.ideal(SPEED, graph) is None and sc.ideal(SPEED, bf16) is None
    assert sc.ideal(MEMORY, point(sc, MEMORY, "pipeline", 2)) is None
    assert any("mxfp4 · graph · b1 (1 GPU)" in n and "bf16 · generate · b1 (2 GPUs)" in n for n in sc.notes)
    assert any(n.startswith("the ideal memory per GPU") and "bf16 (2 GPUs)" in n for n in sc.notes)


def test_without_a_one_gpu_point_the_ideal_starts_at_the_fewest_gpus():
    sc = scaling(build_runset([layout_results("tensor-parallel", 2, speeds(20.0)), layout_results("tensor-parallel", 8, speeds(50.0))]))
    eight = point(sc, SPEED, "tensor-parallel", 8)
    assert sc.reference(SPEED, eight.family).gpus == 2
    assert sc.ideal(SPEED, eight) == pytest.approx(80.0)
    assert sc.ideal(MEMORY, point(sc, MEMORY, "tensor-parallel", 8)) == pytest.approx(point(sc, MEMORY, "tensor-parallel", 2).value / 4)


def test_two_caches_or_two_runs_of_one_point_keep_the_faster():
    single = layout_results("single", 1, {GEN: {"decode_tok_s": [10.0]}, GEN_STATIC: {"decode_tok_s": [12.0]}})
    again = layout_results("single", 1, {GEN: {"decode_tok_s": [11.0]}}, run_id="again")
    sc = scaling(build_runset([single, again, layout_results("expert-parallel", 2, speeds(20.0))]))
    assert point(sc, SPEED, "single", 1).value == 12.0
    assert point(sc, SPEED, "expert-parallel", 2).value == 20.0


def test_runs_without_a_decode_speed_or_a_gpu_load_are_noted():
    # gpt-oss-120b bf16 does not fit one GPU: its load ended oom, the expert-parallel run finished no case
    one = layout_results("single", 1, speeds(10.0))
    one.loads.append(LoadRecord("bf16", "auto", status="oom", message="CUDA out of memory"))
    ep = layout_results("expert-parallel", 2, {GEN: {}}, statuses={GEN: "error"})
    old = make_results(run_id="old")  # no layout recorded
    rs = build_runset([one, ep, old])
    sc = scaling(rs)
    labels = {r.results.run_id: r.label for r in rs.runs}
    assert f"{labels['run-expert-parallel-2']}: decode speed (no finished case measured it)" in sc.notes
    assert f"{labels['run-single-1']}, quant bf16: the load ended oom" in sc.notes
    assert f"{labels['old']}: no load on GPUs with a recorded layout" in sc.notes
    assert point(sc, MEMORY, "expert-parallel", 2).peak is None  # no case: the load's figure alone


def test_busiest_peak_reads_info_gpus_and_ignores_damage():
    res = layout_results("expert-parallel", 2, speeds(10.0))
    case = res.cases[0]
    case.info["gpus"] = {"cuda:0": {"peak_alloc_bytes": [5.0, 7.0, 6.0]}, "cuda:1": {"peak_alloc_bytes": [9.0, "x", None]},
                         "cuda:2": "broken", "cuda:3": {"peak_alloc_bytes": "nope"}}
    assert busiest_peak(case, 2) == 9.0
    case.info["gpus"] = "broken"
    assert busiest_peak(case, 2) is None  # the sum over GPUs is not any one GPU's
    assert busiest_peak(case, 1) == case.median("peak_alloc_bytes")


def test_layout_labels():
    def lay(kind, devices, world=1):
        return Layout(kind, world_size=world, devices=[DeviceShare(d) for d in devices])

    assert layout_text(lay("single", ["cuda:0"])) == "1 GPU"
    assert layout_text(lay("pipeline", ["cuda:0", "cuda:1"])) == "pipeline ×2"
    assert layout_text(lay("expert-parallel", [f"cuda:{i}" for i in range(8)], 8)) == "expert-parallel ×8"
    assert layout_text(lay("tensor-parallel", ["cpu", "cpu"], 2)) == "tensor-parallel ×2 (CPU)"
    assert layout_text(lay("single", ["cpu"])) == "CPU"
    assert layout_text(Layout("expert-parallel", world_size=4)) == "expert-parallel ×4"  # no devices recorded
    rs = build_runset(sweep())
    assert [r.label for r in rs.runs] == ["1 GPU", "expert-parallel ×2", "expert-parallel ×4", "pipeline ×2"]


# --------------------------------------------------------------------------------------------
# Skip reasons
# --------------------------------------------------------------------------------------------


def cpu_tp():
    res = layout_results("tensor-parallel", 2, speeds(5.0))
    res.loads[0].layout.devices = [DeviceShare("cpu"), DeviceShare("cpu")]
    return res


@pytest.mark.parametrize("runs, why", [
    (lambda: [layout_results("single", 1, speeds(10.0))], "one run: the scaling plot sets runs"),
    (lambda: [make_results(run_id="a"), make_results(run_id="b")], "no run records the layout of its load"),
    (lambda: [cpu_tp(), cpu_tp()], "no load ran on GPUs with a recorded layout"),
    (lambda: [layout_results("single", 1, speeds(10.0)), layout_results("single", 1, speeds(11.0), run_id="b")],
     "every run used the same layout (1 GPU)"),
    (lambda: [layout_results("expert-parallel", 2, speeds(10.0)), layout_results("expert-parallel", 2, speeds(11.0), run_id="b")],
     "every run used the same layout (expert-parallel ×2)"),
])
def test_skip_reasons(runs, why):
    rs = build_runset(runs())
    sc = scaling(rs)
    assert sc.skipped and sc.skipped.startswith(why), sc.skipped
    plot = plot_scaling(rs)
    assert plot.figure is None and plot.skipped == sc.skipped
    assert speed_table(sc) is None and memory_table(sc) is None


def test_nothing_measured_on_any_layout_is_skipped():
    a = layout_results("single", 1, {GEN: {}}, statuses={GEN: "error"})
    b = layout_results("expert-parallel", 2, {GEN: {}}, statuses={GEN: "error"})
    for r in (a, b):
        r.loads[0].layout.devices = [DeviceShare(d.device) for d in r.loads[0].layout.devices]  # no bytes
        r.loads[0].metrics = {}
    assert scaling(build_runset([a, b])).skipped.startswith("no run with a GPU layout measured a decode speed")


def test_the_plot_is_offered_to_comparisons_of_runs_with_layouts_only():
    assert builders_for(build_runset([layout_results("single", 1, speeds(10.0))])) == []
    assert builders_for(build_runset([make_results(run_id="a"), make_results(run_id="b")])) == []
    assert builders_for(build_runset(sweep())) == [plot_scaling]


# --------------------------------------------------------------------------------------------
# The figure and the tables
# --------------------------------------------------------------------------------------------


def test_figure_has_both_panels_the_ideal_and_a_legend_of_encodings():
    import matplotlib

    from reports.plots import STYLE

    with matplotlib.rc_context(STYLE):
        plot = plot_scaling(build_runset(sweep()))
    fig = plot.figure
    assert fig._suptitle.get_text() == "Scaling over GPUs"
    speed, memory = fig.axes
    assert speed.get_xlabel() == memory.get_xlabel() == "GPUs"
    assert [t.get_text() for t in speed.get_xticklabels()] == ["1", "2", "4"]
    assert speed.get_ylabel() == "decode speed, all sequences (tok/s)" and memory.get_ylabel() == "memory per GPU, busiest (GiB)"
    assert speed.get_yscale() == "log"  # 9 to 150 tok/s
    ideal = [line for line in speed.get_lines() if line.get_linestyle() == ":"]
    assert [(line.get_xdata()[0], line.get_xdata()[-1]) for line in ideal] == [(1, 4), (1, 4)]  # b1 and b8 from 1 GPU
    b1 = next(line for line in ideal if line.get_ydata()[0] == 10.0)
    assert list(b1.get_ydata()) == pytest.approx([10.0 * x for x in b1.get_xdata()])  # linear: y = 10 N
    memory_ideal = next(line for line in memory.get_lines() if line.get_linestyle() == ":")
    xs, ys = memory_ideal.get_xdata(), memory_ideal.get_ydata()
    assert (xs[0], xs[-1]) == (1, 4) and list(ys) == pytest.approx([ys[0] / x for x in xs])  # 1/N
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:3] == ["single", "pipeline", "expert-parallel"]
    assert {"generate (speed)", "graph (speed)", "batch 1", "batch 8", "bf16 weights", "mxfp4 weights"} <= set(legend)
    assert any(n.startswith("the ideal decode speed") for n in plot.notes)


def test_legend_names_each_series_when_something_else_tells_them_apart():
    other = {CaseKey("low", 512, 128): {"decode_tok_s": [9.0]}}
    runs = [layout_results("single", 1, speeds(10.0)), layout_results("expert-parallel", 2, {**speeds(18.0), **other})]
    plot = plot_scaling(build_runset(runs))
    legend = [t.get_text() for t in plot.figure.legends[0].get_texts()]
    assert "expert-parallel · out 512" in legend and "expert-parallel · out 128" in legend and "single · out 128" in legend
    colours = {line.get_label(): line.get_color() for line in plot.figure.axes[0].get_lines()}
    assert len(colours) == len(set(colours.values()))  # two expert-parallel series, two colours


def test_tables_hold_the_same_figures():
    sc = scaling(build_runset(sweep()))
    speed = speed_table(sc)
    assert speed.headers == ["layout", "GPUs", "weights", "decode", "batch", "decode (tok/s)", "ideal (tok/s)", "of ideal"]
    rows = {tuple(r[:5]): r[5:] for r in speed.rows}
    assert rows[("expert-parallel", "4", "mxfp4", "generate", "1")] == ["30.0 ± 0.3", "40.0", "75%"]
    assert rows[("single", "1", "mxfp4", "generate", "1")][1:] == ["10.0", "100%"]
    assert rows[("single", "1", "mxfp4", "graph", "1")][1:] == ["—", "—"]
    assert "Every point: synthetic:gpt-oss-120b, NVIDIA H200, effort low" in speed.note
    memory = memory_table(sc)
    assert memory.headers == ["layout", "GPUs", "weights", "weights per GPU (GiB)", "ideal (GiB)", "peak per GPU (GiB)"]
    rows = {tuple(r[:3]): r[3:] for r in memory.rows}
    assert rows[("single", "1", "mxfp4")] == ["60.8", "60.8", "76.8"]
    assert rows[("expert-parallel", "4", "mxfp4")][:2] == ["17.9", "15.2"]
    assert rows[("pipeline", "2", "bf16")][1] == "—"
    assert to_markdown(memory).startswith("| layout | GPUs | weights | weights per GPU (GiB) |")


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """`gptoss report` over the sweep's files, as a user runs it."""
    tmp = tmp_path_factory.mktemp("scaling")
    names = ["one.json", "ep2.json", "ep4.json", "pipe2.json"]
    paths = [save_results(tmp, name, res) for name, res in zip(names, sweep())]
    out = tmp / "report"
    from bench.cli import main

    res = CliRunner().invoke(main, ["report", *paths, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_report_shows_the_scaling_figure_and_tables(report):
    md = (report / "report.md").read_text()
    html = (report / "report.html").read_text()
    assert (report / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![Scaling over GPUs](scaling.png)" in md
    assert "- not shown: the ideal decode speed where one GPU count was measured" in md
    for heading in ("Scaling over GPUs: decode speed", "Scaling over GPUs: memory per GPU"):
        assert f"### {heading}\n" in md and f"<h3>{heading}</h3>" in html
    assert "| expert-parallel | 4 | mxfp4 | generate | 1 | 30.0 ± 0.3 | 40.0 | 75% |" in md
    scaling_figure = [f for f in re.findall(r"<figure.*?</figure>", html, re.S) if "Scaling over GPUs." in f]
    assert len(scaling_figure) == 1 and "<svg" in scaling_figure[0]
    assert "| run | run id | layout |" in md  # the runs table names each run's layout


def test_a_comparison_on_one_layout_says_why_there_is_no_scaling_plot(tmp_path):
    runs = [layout_results("single", 1, speeds(10.0)), layout_results("single", 1, speeds(11.0), run_id="b")]
    files = reports.render(runs, tmp_path, formats=["md", "png"])
    assert "scaling" in files.skipped and "every run used the same layout (1 GPU)" in files.skipped["scaling"]
    md = files.markdown.read_text()
    assert "Scaling over GPUs: every run used the same layout (1 GPU)" in md
    assert "### Scaling over GPUs: decode speed" not in md


def test_one_run_never_mentions_scaling(tmp_path):
    files = reports.render(layout_results("expert-parallel", 2, speeds(18.0)), tmp_path, formats=["md", "png"])
    assert "scaling" not in files.skipped and "Scaling over GPUs" not in files.markdown.read_text()


# --------------------------------------------------------------------------------------------
# The sweep recipe in README.md
# --------------------------------------------------------------------------------------------


def recipe() -> list[list[str]]:
    """The commands of README's scaling recipe, $S expanded and comments dropped."""
    import shlex
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"^The scaling curve.*?```\n(.*?)```", readme, re.S | re.M).group(1)
    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    shared = shlex.split(re.fullmatch(r'S="(.*)"', lines[0]).group(1))
    return [[a for word in shlex.split(line) for a in (shared if word == "$S" else [word])] for line in lines[1:] if line]


def test_the_readme_recipe_gives_every_layout_of_the_curve():
    from bench.backends.transformers.parallel import plan_parallel
    from bench.cli import bench as bench_cli

    commands = recipe()
    assert [c[:2] for c in commands] == [["gptoss", "bench"]] * 5 + [["gptoss", "report"]]
    layouts, outs = [], []
    for argv in commands[:-1]:
        ctx = bench_cli.command.make_context("bench", argv[2:])  # parsed as the command line would be
        p = ctx.params
        assert p["model"] == "synthetic:gpt-oss-120b" and p["quant"] == "mxfp4,bf16" and p["batch_sizes"] == "1,8"
        plan = plan_parallel("cuda:0", p["devices"], p["tp"], p["ep"], gpu_count=8)
        layouts.append((plan.kind, len(plan.devices)))
        outs.append(str(p["out_dir"]))
    assert layouts == [("single", 1), ("pipeline", 2), ("expert-parallel", 2), ("expert-parallel", 4), ("expert-parallel", 8)]
    assert len(set(outs)) == len(outs)  # one folder per point, which the report then reads
    assert commands[-1][2] == "scaling/" and all(o.startswith("scaling/") for o in outs)
