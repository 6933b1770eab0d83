"""Fixtures and helpers for tests that run `gptoss bench` on the tiny synthetic model through the
CLI to check what happens around a run (folders, locks, refusals), not its figures."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.models import synthetic as syn


@pytest.fixture(autouse=True)
def no_environment_snapshot(monkeypatch):
    """Skip the few seconds of `gptoss check` that each run records: these tests are not about it."""
    from bench.sweep import session

    monkeypatch.setattr(session, "_environment", lambda ref: {"error": "not taken in this test"})


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A synthetic cache holding synthetic:tiny, written once per test module."""
    folder = tmp_path_factory.mktemp("synthetic-cache")
    syn.ensure("tiny", cache_dir=folder, progress=False)
    return str(folder)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])
