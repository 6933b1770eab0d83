"""The kernel build for this torch: variant names (the kernels library's rules), the hub listing
with --online (injected: the hub is unreachable here), the cache and LOCAL_KERNELS offline; and the
attention check."""

import pytest

from diagnostics import checks as C
from diagnostics import kernel_builds as K
from diagnostics import probes as P
from diagnostics.models import spec_for
from diagnostics.sources import Sources
from diagnostics.testing import make_facts

REPO = "kernels-community/gpt-oss-triton-kernels"
LISTING = ["torch210-cxx11-cu126-x86_64-linux", "torch210-cxx11-cu128-x86_64-linux", "torch211-cxx11-cu128-x86_64-linux",
           "torch211-cxx11-cu130-x86_64-linux", "torch212-cxx11-cu130-x86_64-linux", "torch211-cxx11-cu128-aarch64-linux",
           "torch211-cxx11-rocm71-x86_64-linux"]


def ctx(attn=None):
    return C.Context(model="openai/gpt-oss-20b", spec=spec_for("openai/gpt-oss-20b"), attn=attn)


def sys_(torch="2.11.0", cuda="12.8", cxx11=True, machine="x86_64", system="Linux"):
    return K.system_of(torch, cuda, cxx11, machine, system)


@pytest.mark.parametrize("name,kind,torch,backend,bv", [
    ("torch211-cxx11-cu128-x86_64-linux", "arch", (2, 11), "cuda", (12, 8)),
    ("torch29-cxx98-cu126-x86_64-linux", "arch", (2, 9), "cuda", (12, 6)),
    ("torch212-cu130-aarch64-linux", "arch", (2, 12), "cuda", (13, 0)),
    ("torch213-cxx11-rocm72-x86_64-linux", "arch", (2, 13), "rocm", (7, 2)),
    ("torch213-cxx11-xpu20260-x86_64-linux", "arch", (2, 13), "xpu", (2026, 0)),
    ("torch29-metal-aarch64-darwin", "arch", (2, 9), "metal", None),
    ("torch-stable-abi210-cu128-x86_64-linux", "stable", (2, 10), "cuda", (12, 8)),
    ("torch-cuda", "noarch", None, "cuda", None),
    ("torch-universal", "noarch", None, "universal", None),
])
def test_parse_variant(name, kind, torch, backend, bv):
    v = K.parse_variant(name)
    assert (v.kind, v.torch, v.backend, v.backend_version) == (kind, torch, backend, bv)


@pytest.mark.parametrize("bad", ["metadata.json", "torchx", "torch211-cxx11-cu128", "torch-cuda-extra", "torch211-cxx11-zz9-x86_64-linux"])
def test_parse_rejects_non_variants(bad):
    assert K.parse_variant(bad) is None


def test_wanted_name_is_the_one_the_kernels_library_builds():
    assert sys_().wanted() == "torch211-cxx11-cu128-x86_64-linux"
    assert sys_(cxx11=None).wanted() == "torch211-cu128-x86_64-linux"
    assert sys_(cuda=None).wanted() is None and sys_(machine="AMD64").cpu == "x86_64"


def test_match_rules():
    ok, rejected = K.match(LISTING, sys_())
    assert ok == ["torch211-cxx11-cu128-x86_64-linux"]
    assert "CUDA 13.0 build, torch is built for CUDA 12.8" in rejected["torch211-cxx11-cu130-x86_64-linux"]
    assert "aarch64" in rejected["torch211-cxx11-cu128-aarch64-linux"]
    assert "torch 2.10" in rejected["torch210-cxx11-cu128-x86_64-linux"]
    # an older CUDA minor of the same major is fine; the newer one preferred
    ok, _ = K.match(["torch211-cxx11-cu126-x86_64-linux", "torch211-cxx11-cu128-x86_64-linux"], sys_(cuda="12.9"))
    assert ok == ["torch211-cxx11-cu128-x86_64-linux", "torch211-cxx11-cu126-x86_64-linux"]
    assert K.match(["torch211-cxx98-cu128-x86_64-linux"], sys_())[0] == []
    assert K.match(["torch-stable-abi210-cu128-x86_64-linux"], sys_())[0] == ["torch-stable-abi210-cu128-x86_64-linux"]
    assert K.match(["torch-stable-abi212-cu128-x86_64-linux"], sys_())[0] == []
    assert K.match(["torch-cuda", "torch-rocm"], sys_())[0] == ["torch-cuda"]
    assert K.match(["torch-universal", "junk"], sys_(torch="2.13.0", cuda="13.0"))[0] == ["torch-universal"]
    assert K.torch_versions_built(LISTING) == ["2.10", "2.11", "2.12"]


def facts_with(listing, source="hub", **kw):
    base = dict(torch="2.11.0+cu128", cuda_build="12.8", driver_cuda="12.8")
    base.update(kw)
    f = make_facts("H100", **base)
    f.torch.cxx11_abi = True
    f.kernel.variants, f.kernel.variants_source = listing, source
    return f


def test_kernel_build_check_with_an_injected_hub_listing():
    c = C.check_kernel_build(facts_with(LISTING), ctx())
    assert c.status == "pass" and "the hub lists 7 build(s)" in c.message and "build/torch211-cxx11-cu128-x86_64-linux" in c.message
    assert "Python 3.11.7" in c.message


def test_no_build_for_torch_213_fails_and_names_a_torch_that_has_one():
    f = facts_with(LISTING, torch="2.13.0", cuda_build="13.0", driver_cuda="13.0", triton="3.7.1", triton_pin="==3.7.1")
    c = C.check_kernel_build(f, ctx())
    assert c.status == "fail" and "none for torch 2.13.0" in c.message and "torch 2.10, 2.11, 2.12" in c.message
    assert "build/torch213-cxx11-cu130-x86_64-linux" in c.message and c.fix == 'pip install "torch==2.12.1"'
    f.mxfp4.path = "bf16"
    assert C.check_kernel_build(f, ctx()).status == "warn"


def test_kernel_build_offline_says_what_the_cache_holds_or_skips():
    assert C.check_kernel_build(facts_with(["torch211-cxx11-cu128-x86_64-linux"], "cache"), ctx()).message.startswith(
        "the cached copy holds 1 build(s)")
    unknown = C.check_kernel_build(facts_with(None, None), ctx())
    assert unknown.status == "skip" and "--online" in unknown.message and "torch211-cxx11-cu128-x86_64-linux" in unknown.message
    flat = facts_with(None, None)
    flat.kernel.local_ok, flat.kernel.local_kernels = True, "x=/k"
    assert C.check_kernel_build(flat, ctx()).status == "pass"
    assert C.check_kernel_build(make_facts(None, torch="2.13.0+cpu", cuda_build=None), ctx()).status == "skip"
    assert C.check_kernel_build(make_facts("T4", kernel_repo=None), ctx()).status == "skip"


# ---- the probe ----------------------------------------------------------------------------------


def _src(tmp_path, **kw):
    defaults = dict(environ={}, home=str(tmp_path), hub_check=lambda repo, t: None)
    defaults.update(kw)
    return Sources(**defaults)


def test_probe_lists_the_hub_builds_of_the_version_ref_only_online(tmp_path):
    calls = []

    def listing(repo, revision, timeout):
        calls.append((repo, revision, timeout))
        return list(reversed(LISTING))

    k = P.probe_kernel(_src(tmp_path, hub_list_build=listing), REPO, 1, False)
    assert calls == [] and k.variants is None
    k = P.probe_kernel(_src(tmp_path, hub_list_build=listing, hub_timeout_s=4), REPO, 1, True)
    assert calls == [(REPO, "v1", 4)] and k.variants == sorted(LISTING) and k.variants_source == "hub"


def test_probe_unreachable_hub_falls_back_to_the_cache(tmp_path):
    snap = tmp_path / "hub" / f"models--{REPO.replace('/', '--')}"
    (snap / "refs").mkdir(parents=True)
    (snap / "refs" / "v1").write_text("abc")
    (snap / "snapshots" / "abc" / "build" / "torch211-cxx11-cu128-x86_64-linux" / "gpt_oss_triton_kernels").mkdir(parents=True)

    def down(repo, revision, timeout):
        raise TimeoutError("hub unreachable")

    k = P.probe_kernel(_src(tmp_path, environ={"HF_HUB_CACHE": str(tmp_path / "hub")}, hub_list_build=down), REPO, 1, True)
    assert k.cached and k.variants == ["torch211-cxx11-cu128-x86_64-linux"] and k.variants_source == "cache"
    assert "hub unreachable" in k.variants_error


def test_probe_reads_local_kernels_variants(tmp_path):
    folder = tmp_path / "kernel"
    (folder / "build" / "torch-cuda").mkdir(parents=True)
    (folder / "metadata.json").write_text("{}")
    k = P.probe_kernel(_src(tmp_path, environ={"LOCAL_KERNELS": f"{REPO}={folder}"}), REPO, 1, False)
    assert k.local_ok and k.variants == ["torch-cuda"] and k.variants_source == "local"
    flat = tmp_path / "flat"
    (flat / "gpt_oss_triton_kernels").mkdir(parents=True)
    (flat / "metadata.json").write_text("{}")
    k = P.probe_kernel(_src(tmp_path, environ={"LOCAL_KERNELS": f"{REPO}={flat}"}), REPO, 1, False)
    assert k.local_ok and k.variants is None


# ---- attention ------------------------------------------------------------------------------------


def test_sdpa_is_refused_for_gpt_oss():
    c = C.check_attention(make_facts("T4"), ctx("sdpa"))
    assert c.status == "fail" and "attention sinks" in c.message and c.fix == 'attn_implementation="eager"'
    h100 = C.check_attention(make_facts("H100"), ctx("sdpa"))
    assert "vllm-flash-attn3" in h100.fix


@pytest.mark.parametrize("req", ["kernels-community/vllm-flash-attn3", "flash_attention_2", "flash_attention_3"])
def test_flash_attention_needs_hopper_and_kernels_in_the_window(req):
    ok = C.check_attention(make_facts("H100"), ctx(req))
    assert ok.status == "pass" and "Hopper" in ok.message
    t4 = C.check_attention(make_facts("T4"), ctx(req))
    assert t4.status == "fail" and "Hopper (compute capability 9.0) only" in t4.message and "eager" in t4.fix
    a100 = C.check_attention(make_facts("A100"), ctx(req))
    assert a100.status == "fail" and "8.0" in a100.message
    out = C.check_attention(make_facts("H100", transformers="5.24.0", kernels="0.17.2"), ctx(req))
    assert out.status == "fail" and "kernels 0.17.2" in out.message and out.fix.startswith('pip install "transformers==5.22.2"')
    none = C.check_attention(make_facts("H100", kernels=None), ctx(req))
    assert none.status == "fail" and "kernels is not installed" in none.message
    assert C.check_attention(make_facts(None), ctx(req)).status == "skip"


def test_default_attention_is_eager_and_hopper_mentions_fa3():
    t4 = C.check_attention(make_facts("T4"), ctx())
    assert t4.status == "pass" and "eager" in t4.message and "not Hopper" in t4.message
    h100 = C.check_attention(make_facts("H100"), ctx())
    assert h100.status == "pass" and "kernels-community/vllm-flash-attn3" in h100.message
    assert C.check_attention(make_facts(None), ctx("eager")).status == "pass"
    assert C.check_attention(make_facts("T4"), ctx("flex_attention")).status == "pass"
    odd = C.check_attention(make_facts("T4"), ctx("org/some-attention"))
    assert odd.status == "warn" and "not one gpt-oss is known to run with" in odd.message
