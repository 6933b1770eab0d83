"""The fresh-interpreter script's logic, run in-process against fake torch/transformers modules.

(The real script against the real transformers runs once, in tests/test_check_cli.py.)
"""

import json
import logging
import sys
import types

import pytest

from diagnostics.probes import RUNTIME_MARK, RUNTIME_SCRIPT

LOG = logging.getLogger("transformers.quantizers.quantizer_mxfp4")


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    return m


class FakeConfig:
    def __init__(self):
        self.dequantize = False


def make_quantizer(validate=None, before=None):
    class Mxfp4HfQuantizer:
        def __init__(self, config, **kwargs):
            self.quantization_config = config
            self.pre_quantized = kwargs.get("pre_quantized", True)

        def validate_environment(self, *args, **kwargs):
            assert kwargs.get("device_map") == "auto"
            if validate:
                validate(self)

        def _process_model_before_weight_loading(self, model, use_kernels=False, **kwargs):
            assert use_kernels is False
            if before:
                before(self)
            model._keep_in_fp32_modules.append("x")  # the stand-in model raises here: ignored by the script

    return Mxfp4HfQuantizer


@pytest.fixture
def fake_world(monkeypatch):
    """Install fake torch / transformers / kernels; returns a function running the script."""
    real_get_kernel_calls = []

    def install(quantizer=None, torch_ok=True, transformers_ok=True, has_quantizer=True, cuda=True, kernels=True):
        if torch_ok:
            props = types.SimpleNamespace(name="Tesla T4", major=7, minor=5, total_memory=15 * 1024**3)
            cuda_mod = types.SimpleNamespace(
                is_available=lambda: cuda, device_count=lambda: 1 if cuda else 0, get_device_properties=lambda i: props,
                is_bf16_supported=lambda including_emulation=True: including_emulation,
            )
            torch = _module("torch", __version__="2.8.0+cu128", version=types.SimpleNamespace(cuda="12.8", hip=None), cuda=cuda_mod)
            monkeypatch.setitem(sys.modules, "torch", torch)
        else:
            monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
        if not transformers_ok:
            monkeypatch.setitem(sys.modules, "transformers", None)
            return
        device = types.SimpleNamespace(type="cuda" if cuda else "cpu")
        iu = _module("transformers.utils.import_utils", KERNELS_MIN_VERSION="0.18.2", KERNELS_MAX_VERSION="0.19.0",
                     get_current_accelerator=lambda: device if cuda else None)
        hf_logging = _module("transformers.utils.logging", set_verbosity_warning=lambda: None)
        utils = _module("transformers.utils", import_utils=iu, logging=hf_logging)
        tf = _module("transformers", __version__="5.23.0", Mxfp4Config=FakeConfig, utils=utils)
        for name, mod in {"transformers": tf, "transformers.utils": utils, "transformers.utils.import_utils": iu,
                          "transformers.utils.logging": hf_logging}.items():
            monkeypatch.setitem(sys.modules, name, mod)
        if has_quantizer:
            qmod = _module("transformers.quantizers.quantizer_mxfp4", Mxfp4HfQuantizer=quantizer or make_quantizer())
            monkeypatch.setitem(sys.modules, "transformers.quantizers", _module("transformers.quantizers", quantizer_mxfp4=qmod))
            monkeypatch.setitem(sys.modules, "transformers.quantizers.quantizer_mxfp4", qmod)
        else:
            monkeypatch.setitem(sys.modules, "transformers.quantizers.quantizer_mxfp4", None)
        if kernels:
            def real_get_kernel(repo_id, *a, **k):
                real_get_kernel_calls.append(repo_id)
                raise AssertionError("the real get_kernel must never run")

            monkeypatch.setitem(sys.modules, "kernels", _module("kernels", get_kernel=real_get_kernel, __version__="0.18.2"))
            monkeypatch.setitem(sys.modules, "transformers.integrations", _module("transformers.integrations"))
            monkeypatch.setitem(sys.modules, "transformers.integrations.hub_kernels",
                                _module("transformers.integrations.hub_kernels", get_kernel=real_get_kernel))
            monkeypatch.setitem(sys.modules, "transformers.integrations.mxfp4", _module("transformers.integrations.mxfp4"))
        else:
            monkeypatch.setitem(sys.modules, "kernels", None)

    def run(capsys):
        handlers = list(logging.getLogger("transformers").handlers)
        try:
            exec(compile(RUNTIME_SCRIPT.read_text(), "runtime_script", "exec"), {"__name__": "__main__"})
        finally:
            logging.getLogger("transformers").handlers[:] = handlers
        out = capsys.readouterr().out
        line = next(x for x in out.splitlines() if x.startswith(RUNTIME_MARK))
        return json.loads(line[len(RUNTIME_MARK):])

    install.run = run
    install.real_calls = real_get_kernel_calls
    return install


def test_validate_environment_flipping_to_bf16_is_reported_with_its_warning(fake_world, capsys):
    def validate(q):
        LOG.warning("MXFP4 quantization requires the `kernels` package. We will default to dequantizing the model to bf16.")
        q.quantization_config.dequantize = True

    fake_world(make_quantizer(validate=validate))
    out = fake_world.run(capsys)
    mx = out["mxfp4"]
    assert mx["path"] == "bf16" and "requires the `kernels` package" in mx["reason"]
    assert mx["stage"] == "validate_environment" and mx["kernels_min"] == "0.18.2" and mx["device"] == "cuda"
    assert out["torch"]["cuda_available"] is True and out["torch"]["devices"][0]["compute_capability"] == "7.5"
    assert out["torch"]["bf16_supported"] is False  # asked without emulation


def test_flip_in_process_model_before_weight_loading_counts(fake_world, capsys):
    def before(q):
        LOG.warning("MXFP4 inference on CPU requires use_kernels=True. We will dequantize the model to bf16.")
        q.quantization_config.dequantize = True

    fake_world(make_quantizer(before=before), cuda=False)
    mx = fake_world.run(capsys)["mxfp4"]
    assert mx["path"] == "bf16" and "use_kernels=True" in mx["reason"] and mx["device"] == "cpu"


def test_kernel_fetch_is_intercepted_and_means_mxfp4(fake_world, capsys):
    def before(q):
        import kernels

        kernels.get_kernel("kernels-community/gpt-oss-triton-kernels", version=1)

    fake_world(make_quantizer(before=before))
    mx = fake_world.run(capsys)["mxfp4"]
    assert mx["path"] == "mxfp4" and mx["kernel_requested"] == "kernels-community/gpt-oss-triton-kernels"
    assert fake_world.real_calls == []


def test_no_flip_means_mxfp4(fake_world, capsys):
    fake_world(make_quantizer(), kernels=False)
    mx = fake_world.run(capsys)["mxfp4"]
    assert mx["path"] == "mxfp4" and mx["stage"] == "done" and mx["kernel_requested"] is None


def test_validate_raising_means_transformers_refuses(fake_world, capsys):
    def validate(q):
        raise ImportError("Using mxfp4 requires Accelerate: `pip install accelerate`")

    fake_world(make_quantizer(validate=validate))
    mx = fake_world.run(capsys)["mxfp4"]
    assert mx["path"] == "none" and "Accelerate" in mx["reason"]


def test_missing_torch_transformers_or_quantizer(fake_world, capsys):
    fake_world(torch_ok=False)
    out = fake_world.run(capsys)
    assert out["torch"]["installed"] is False and out["mxfp4"]["path"] == "none"


def test_missing_transformers(fake_world, capsys):
    fake_world(transformers_ok=False)
    mx = fake_world.run(capsys)["mxfp4"]
    assert mx["path"] == "none" and mx["reason"] == "transformers is not installed"


def test_transformers_without_mxfp4_quantizer(fake_world, capsys):
    fake_world(has_quantizer=False)
    mx = fake_world.run(capsys)["mxfp4"]
    assert mx["path"] == "none" and "no MXFP4 quantizer" in mx["reason"] and "4.55.0" in mx["reason"]
