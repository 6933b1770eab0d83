"""The harness's own generate path raises no deprecation warning: transformers 5.24 renamed the
output's `past_key_values` to `cache` and warns (through its logger, once per process) when the
old name is read."""

from __future__ import annotations

import logging
import warnings

import pytest

from bench import results as R
from bench.backends.transformers.backend import TransformersBackend, TransformersOptions, output_cache
from diagnostics.modelref import ModelRef


class _Raise(logging.Handler):
    """Turns a deprecation logged by transformers into an error, as -W error does for warnings."""

    def emit(self, record: logging.LogRecord) -> None:
        if "deprecat" in record.getMessage().lower():
            raise AssertionError(f"transformers logged a deprecation: {record.getMessage()}")


@pytest.fixture
def deprecations_are_errors():
    from transformers.utils import logging as tlog

    tlog.warning_once.cache_clear()  # a warning already logged once in this process would not show again
    logger = logging.getLogger("transformers")
    handler = _Raise(level=logging.WARNING)
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            warnings.simplefilter("error", FutureWarning)
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def test_the_tiny_generate_path_uses_no_deprecated_name(tmp_path, deprecations_are_errors):
    backend = TransformersBackend(ModelRef.parse("synthetic:tiny"),
                                  TransformersOptions(device="cpu", cache_dir=str(tmp_path)), progress=False)
    assert backend.load("auto", "auto").status == "ok"
    try:
        for cache in ("dynamic", "static"):
            rep = backend.prepare(R.CaseKey("low", 3, 128, cache=cache)).once()
            assert rep.timings[0].new_tokens == 3
            assert rep.samples["kv_cache_bytes"] > 0  # the cache was found under its current name
    finally:
        backend.unload()


def test_output_cache_reads_either_name():
    from dataclasses import dataclass

    @dataclass
    class Old:
        past_key_values: object = "old-cache"

    @dataclass
    class New:
        cache: object = "new-cache"

    assert output_cache(Old()) == "old-cache" and output_cache(New()) == "new-cache"
    assert output_cache(object()) is None
