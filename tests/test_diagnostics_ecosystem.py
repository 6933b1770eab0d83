"""Every fix installs: released versions from PyPI (--online, injected here) or the dated table,
kernels windows by transformers release, the newest working pair, and the index check."""

import json
from datetime import date

import pytest

from diagnostics import checks as C
from diagnostics import ecosystem as E
from diagnostics.ecosystem_probes import probe_index
from diagnostics.facts import IndexFacts
from diagnostics.models import spec_for
from diagnostics.report import snapshot
from diagnostics.sources import Sources
from diagnostics.testing import make_facts


def ctx(today=None, attn=None):
    return C.Context(model="openai/gpt-oss-20b", spec=spec_for("openai/gpt-oss-20b"), today=today, attn=attn)


def pypi_doc(*versions, yanked=()):
    return {"info": {"version": versions[-1]},
            "releases": {v: [{"filename": f"x-{v}.whl", "yanked": v in yanked}] for v in versions} | {"0.0.1": []}}


def index_sources(answers, **kw):
    def pypi(name, timeout):
        a = answers[name]
        if isinstance(a, Exception):
            raise a
        return a
    return Sources(pypi_json=pypi, **kw)


# ---- the table -------------------------------------------------------------------------------


@pytest.mark.parametrize("tv,window", [
    ("5.15.0", ("0.16.0", "0.17.0")), ("5.17.0", ("0.16.0", "0.17.0")), ("5.19.0", ("0.17.0", "0.18.0")),
    ("5.20.0", ("0.17.2", "0.18.0")), ("5.21.1", ("0.17.2", "0.18.0")), ("5.22.2", ("0.17.2", "0.18.0")),
    ("5.23.0", ("0.18.2", "0.19.0")), ("5.24.0", ("0.18.2", "0.19.0")), ("5.25.0", None), ("4.57.6", None),
])
def test_windows_by_transformers_release(tv, window):
    assert E.window_for(tv) == window


def test_the_newest_working_pair_skips_the_unreleased_window():
    pair = E.newest_working_pair(None)
    assert (pair.transformers, pair.kernels, pair.window) == ("5.22.2", "0.17.2", ("0.17.2", "0.18.0"))
    # once kernels 0.18.2 exists on the index, 5.24.0 is the pair
    ix = IndexFacts(versions={"kernels": [*E.RELEASED["kernels"], "0.18.2"]})
    assert E.newest_working_pair(ix) == E.Pair("5.24.0", "0.18.2", ("0.18.2", "0.19.0"))


def test_released_and_newest_helpers():
    assert E.released(None, "kernels")[-1] == "0.17.2" and E.source_of(None, "kernels") == "table"
    ix = IndexFacts(versions={"triton": ["3.10.0", "3.9.0", "3.9.1rc1"]})
    assert E.released(ix, "triton") == ["3.9.0", "3.9.1rc1", "3.10.0"] and E.source_of(ix, "triton") == "pypi"
    assert E.newest_in(E.released(None, "kernels"), "0.18.2", "0.19.0") is None
    assert E.newest_in(["0.16.0", "0.16.2", "0.17.0rc1"], "0.16.0", "0.18.0") == "0.16.2"
    assert E.newest_matching(E.released(None, "triton"), "~=3.8.0") == "3.8.0"
    assert E.newest_matching(["3.9.0"], "==3.6.0") is None
    assert E.table_age_days(date(2027, 1, 29)) == 60 and E.window_text("0.1", None) == ">=0.1"


def test_table_is_sorted_and_rows_do_not_overlap():
    rows = E.KERNELS_WINDOWS
    for a, b in zip(rows, rows[1:]):
        assert E.compare(a.transformers_high, b.transformers_low) == -1
    for name, versions in E.RELEASED.items():
        assert list(versions) == E.released(None, name), name
    assert [b.version for b in E.TORCH_BUILDS] == sorted((b.version for b in E.TORCH_BUILDS), key=E.parse)


@pytest.mark.parametrize("driver,expected", [
    ("12.4", ("2.11.0", "cu128")), ("12.6", ("2.10.0", "cu126")), ("12.8", ("2.11.0", "cu128")),
    ("13.0", ("2.14.1", None)), ("13.2", ("2.15.0", None)), ("11.4", None), (None, None),
])
def test_torch_for_driver_never_past_the_drivers_major(driver, expected):
    got = E.torch_for_driver(driver)
    assert (got and (got[0].version, got[1])) == expected or (got is None and expected is None)


def test_torch_for_driver_exact_only_and_veto():
    assert E.torch_for_driver("12.4", exact_only=True) is None
    got = E.torch_for_driver("13.0", accept=lambda b: b.version.startswith("2.11"))
    assert (got[0].version, got[1]) == ("2.11.0", None)


# ---- the index probe ---------------------------------------------------------------------------


def test_offline_index_uses_the_table_and_never_asks():
    def boom(name, timeout):
        raise AssertionError("offline must not ask the index")
    ix = probe_index(Sources(pypi_json=boom), online=False)
    assert not ix.online_checked and ix.versions == {} and ix.table_date == E.TABLE_DATE
    assert set(ix.source.values()) == {"table"}


def test_online_index_answers_drop_yanked_and_empty_releases():
    src = index_sources({"kernels": pypi_doc("0.17.2", "0.18.2", yanked=("0.18.2",)),
                         "transformers": pypi_doc("5.24.0"), "triton": pypi_doc("3.9.0")}, index_timeout_s=2)
    ix = probe_index(src, online=True, now="2026-12-01T10:00:00+00:00")
    assert ix.versions["kernels"] == ["0.17.2"] and ix.source == {"kernels": "pypi", "transformers": "pypi", "triton": "pypi"}
    assert ix.online_error is None and ix.checked_at.startswith("2026-12-01")


def test_unreachable_index_is_a_fact_and_the_table_stands_in():
    src = index_sources({n: TimeoutError("timed out") for n in E.INDEX_PACKAGES})
    ix = probe_index(src, online=True)
    assert ix.online_checked and "timed out" in ix.online_error and ix.versions == {}
    f = make_facts("T4", transformers="5.24.0", kernels="0.17.2")
    f.index = ix
    c = C.check_index(f, ctx())
    assert c.status == "warn" and "did not answer" in c.message and "table of known-good pairs of 2026-11-30" in c.message
    assert C.check_kernels(f, ctx()).fix.startswith('pip install "transformers==5.22.2" "kernels==0.17.2"')


def test_partly_answering_index_and_bad_json():
    src = index_sources({"kernels": pypi_doc("0.17.2"), "transformers": ValueError("Expecting value"),
                         "triton": {"releases": {}}})
    ix = probe_index(src, online=True)
    assert ix.source["kernels"] == "pypi" and ix.source["transformers"] == "table"
    assert "transformers: ValueError" in ix.online_error and "triton" in ix.online_error
    f = make_facts("T4")
    f.index = ix
    assert "PyPI answered for kernels" in C.check_index(f, ctx()).message


# ---- the checks ---------------------------------------------------------------------------------


def test_index_check_offline_says_how_old_the_table_is():
    f = make_facts("T4")
    fresh = C.check_index(f, ctx(date(2026, 12, 10)))
    assert fresh.status == "pass" and "(10 days old)" in fresh.message and "kernels 0.17.2" in fresh.message
    old = C.check_index(f, ctx(date(2027, 6, 1)))
    assert old.status == "warn" and "183 days old" in old.message and old.fix == "gptoss check --online"


def test_index_check_online_names_transformers_newer_than_the_table():
    f = make_facts("T4")
    f.index = IndexFacts(versions={"kernels": ["0.17.2"], "transformers": ["5.24.0", "5.25.0"], "triton": ["3.9.0"]},
                         source={n: "pypi" for n in E.INDEX_PACKAGES}, online_checked=True, checked_at="2026-12-01T00:00:00")
    c = C.check_index(f, ctx())
    assert c.status == "pass" and "PyPI, asked 2026-12-01" in c.message and "transformers 5.25.0 is newer" in c.message


def test_transformers_5_24_with_the_newest_kernels_gets_a_fix_that_installs():
    """The issue's case: the newest transformers declares a kernels window nobody can satisfy."""
    f = make_facts("T4", transformers="5.24.0", kernels="0.17.2", window=("0.18.2", "0.19.0"), path="bf16",
                   reason="MXFP4 quantization requires the `kernels` package: Please install a compatible version "
                          "(0.18.2 <= version < 0.19.0), e.g. `pip install kernels==0.18.2`. We will default to "
                          "dequantizing the model to bf16.")
    r = snapshot(facts=f)
    k = r.check("kernels")
    assert k.status == "warn" and "no kernels release is inside it (newest released: 0.17.2" in k.message
    assert k.fix.startswith('pip install "transformers==5.22.2" "kernels==0.17.2"') and "0.18.2" not in k.fix.split("#")[0]
    assert r.check("mxfp4").fix == k.fix
    assert r.plan.expected["transformers"] == "5.22.2" and r.plan.expected["kernels"] == "0.17.2"
    # nothing names a kernels version that is not released
    doc = json.dumps([c.fix.split("#")[0] for c in r.checks if c.fix] + r.plan.commands)
    assert "kernels==0.18" not in doc and "kernels>=0.18" not in doc


def test_online_answer_changes_the_fix():
    f = make_facts("T4", transformers="5.24.0", kernels="0.17.2")
    f.index = IndexFacts(versions={"kernels": ["0.17.2", "0.18.2", "0.18.3"]}, source={"kernels": "pypi"},
                         online_checked=True, checked_at="2026-12-20T00:00:00")
    c = C.check_kernels(f, ctx())
    assert c.fix == 'pip install "kernels==0.18.3"' and "no kernels release" not in c.message


def test_triton_fix_resolves_a_compatible_pin_to_a_released_version():
    c = C.check_triton(make_facts("H100", torch="2.14.1", triton="3.4.0", triton_pin="~=3.8.0"), ctx())
    assert c.status == "fail" and c.fix == 'pip install "triton==3.8.0"'
    nightly = make_facts("H100", triton=None, triton_pin="==3.99.0+gitabc")
    nightly.packages["torch"].pins = {"pytorch-triton": "==3.99.0+gitabc"}
    assert C.check_triton(nightly, ctx()).fix == 'pip install "pytorch-triton==3.99.0+gitabc"'


def test_transformers_too_old_gets_the_working_pair():
    c = C.check_transformers(make_facts("T4", transformers="4.54.1"), ctx())
    assert c.status == "fail" and c.fix == 'pip install "transformers==5.22.2" "kernels==0.17.2"'


def test_torch_fix_pins_a_release_on_the_drivers_index():
    cpu = C.check_torch(make_facts("T4", torch="2.13.0+cpu", cuda_build=None, driver_cuda="12.4"), ctx())
    assert cpu.fix == 'pip install "torch==2.11.0" --index-url https://download.pytorch.org/whl/cu128'
    h200 = C.check_torch(make_facts("H100", torch="2.13.0+cpu", cuda_build=None, driver_cuda="13.0"), ctx())
    assert h200.fix == 'pip install "torch==2.14.1"'
