"""Model sources: synthetic, local folders, hub ids and the errors a user can cause."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from bench.models import sources
from bench.models import synthetic
from bench.results.errors import UserError


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return synthetic.build("tiny", tmp_path_factory.mktemp("src") / "tiny", progress=False).path


def _one_sentence(msg: str) -> None:
    assert "\n" not in msg and msg.endswith(".") and "Traceback" not in msg


# --------------------------------------------------------------------------------------------
# synthetic:
# --------------------------------------------------------------------------------------------


def test_synthetic_is_written_once_then_reused(tmp_path):
    r = sources.resolve("synthetic:tiny", cache_dir=tmp_path, progress=False)
    assert (r.source, r.synthetic, r.spec, r.download_s) == ("synthetic", True, "tiny", None)
    assert r.revision == f"seed0-v{synthetic.FORMAT_VERSION}" and r.write_s is not None
    assert Path(r.path) == synthetic.cache_path("tiny", 0, tmp_path)
    again = sources.resolve("synthetic:tiny", cache_dir=tmp_path, progress=False)
    assert again.path == r.path and again.write_s is None
    other = sources.resolve("synthetic:tiny", cache_dir=tmp_path, progress=False, seed=5)
    assert other.path != r.path and other.revision.startswith("seed5-")
    info = r.to_model_info()
    assert (info.id, info.source, info.synthetic, info.revision) == ("synthetic:tiny", "synthetic", True, r.revision)


def test_unknown_synthetic_name(tmp_path):
    with pytest.raises(UserError, match="synthetic:gpt-oss-20b") as e:
        sources.resolve("synthetic:gpt-oss-7b", cache_dir=tmp_path)
    _one_sentence(str(e.value))


# --------------------------------------------------------------------------------------------
# local folders
# --------------------------------------------------------------------------------------------


def test_local_synthetic_folder_is_recognised(tiny_dir):
    r = sources.resolve(str(tiny_dir))
    assert (r.source, r.synthetic, r.spec, r.download_s) == ("local", True, "tiny", None)
    assert r.path == str(tiny_dir.resolve())


def test_local_folder_relative_and_home(tiny_dir, monkeypatch):
    monkeypatch.chdir(tiny_dir.parent)
    assert sources.resolve("./tiny").path == str(tiny_dir.resolve())
    assert sources.resolve("tiny/").path == str(tiny_dir.resolve())  # an existing folder wins over names
    monkeypatch.setenv("HOME", str(tiny_dir.parent))
    assert sources.resolve("~/tiny").path == str(tiny_dir.resolve())


def test_plain_checkpoint_folder(tiny_dir, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(tiny_dir, plain)
    (plain / synthetic.MANIFEST).unlink()
    r = sources.resolve(str(plain))
    assert (r.source, r.synthetic, r.spec) == ("local", False, None)


def test_damaged_local_synthetic_folder(tiny_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    shard = next(broken.glob("model-*.safetensors"))
    with open(shard, "r+b") as f:
        f.truncate(100)
    with pytest.raises(UserError, match="gptoss synthesize tiny") as e:
        sources.resolve(str(broken))
    _one_sentence(str(e.value))


@pytest.mark.parametrize("model", ["./does-not-exist", "/nonexistent/gpt-oss", "~/nope-gptoss-x", "a/b/c", "../x"])
def test_missing_folders(model, tmp_path, monkeypatch):
    # relative paths resolve inside an empty folder, so nothing on this machine can satisfy them
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    with pytest.raises(UserError, match="does not exist") as e:
        sources.resolve(model)
    _one_sentence(str(e.value))


def test_folder_without_config_or_weights_and_a_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no config.json"):
        sources.resolve(str(empty))
    (empty / "config.json").write_text("{}")
    with pytest.raises(UserError, match="no weights") as e:
        sources.resolve(str(empty))
    _one_sentence(str(e.value))
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"x")
    with pytest.raises(UserError, match="is a file"):
        sources.resolve(str(f))


# --------------------------------------------------------------------------------------------
# hub ids
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["openai/gpt oss", "-bad/x", "org/na..me", "a--b/c", "x" * 100 + "/y", "org/", "@@"])
def test_malformed_ids(model, monkeypatch):
    monkeypatch.setattr(sources, "_resolve_hub", lambda *a, **k: pytest.fail("must not reach the hub"))
    with pytest.raises(UserError) as e:
        sources.resolve(model)
    _one_sentence(str(e.value))


def test_hub_validation_error_becomes_a_user_error(monkeypatch):
    def fake(**kwargs):
        raise ValueError("Repo id must use alphanumeric chars")

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake)
    with pytest.raises(UserError, match="not a valid hub id"):
        sources.resolve("org/name-")


@pytest.mark.parametrize("model, hint", [("tiny", "synthetic:tiny"), ("gpt-oss-20b", "openai/gpt-oss-20b"), ("", "--model")])
def test_bare_synthetic_names_and_empty(model, hint):
    with pytest.raises(UserError, match=hint) as e:
        sources.resolve(model)
    _one_sentence(str(e.value))


def test_offline_hub_names_hf_hub_offline(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as e:
        sources.resolve("gptoss-harness-test/not-cached-anywhere", progress=False)
    msg = str(e.value)
    assert "HF_HUB_OFFLINE" in msg and "local checkpoint folder" in msg
    _one_sentence(msg)
    with pytest.raises(UserError, match="synthetic:gpt-oss-20b"):
        sources.resolve("gptoss-harness-test/gpt-oss-20b", progress=False)


def test_unreachable_hub_names_hf_hub_offline(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: no real network
    start = time.perf_counter()
    with pytest.raises(UserError) as e:
        sources.resolve("gptoss-harness-test/not-cached-anywhere", progress=False)
    msg = str(e.value)
    assert "HF_HUB_OFFLINE" in msg and "local checkpoint folder" in msg
    _one_sentence(msg)
    assert time.perf_counter() - start < 60  # no long retry loop


def _hub_error(name: str):
    from bench.models.sources import _hub_errors

    cls = _hub_errors()[name]
    e = cls.__new__(cls)
    Exception.__init__(e, f"{name} for the test")
    return e


@pytest.mark.parametrize("error, expected", [
    ("RepositoryNotFoundError", "was not found"),
    ("GatedRepoError", "is gated"),
    ("RevisionNotFoundError", "--revision"),
    ("HfHubHTTPError", "failed"),
])
def test_hub_errors_become_one_sentence(monkeypatch, error, expected):
    def fake(**kwargs):
        raise _hub_error(error)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(UserError, match=expected) as e:
        sources.resolve("openai/gpt-oss-20b", revision="v9", progress=False)
    _one_sentence(str(e.value))


def _fake_snapshot(tmp_path: Path, files_age_s: float, calls: list):
    commit = "0123456789abcdef0123456789abcdef01234567"

    def fake(**kwargs):
        calls.append(kwargs)
        snap = tmp_path / "models--org--m" / "snapshots" / commit
        snap.mkdir(parents=True, exist_ok=True)
        for name, data in (("config.json", b"{}"), ("model.safetensors", b"\0" * 1000)):
            p = snap / name
            if not p.exists():
                p.write_bytes(data)
            old = time.time() - files_age_s
            os.utime(p, (old, old))
        return str(snap)

    return fake, commit


def test_hub_download_is_timed_and_skips_other_formats(monkeypatch, tmp_path):
    calls: list = []
    fake, commit = _fake_snapshot(tmp_path, 0, calls)
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    r = sources.resolve("org/m", progress=False)
    assert (r.source, r.synthetic, r.revision) == ("hub", False, commit)
    assert r.download_s is not None and r.download_s >= 0 and r.downloaded_bytes == 1002
    assert "original/*" in calls[0]["ignore_patterns"] and "metal/*" in calls[0]["ignore_patterns"]
    assert calls[0]["local_files_only"] is False


def test_cached_hub_snapshot_has_no_download_time(monkeypatch, tmp_path):
    from huggingface_hub import utils as hub_utils

    calls: list = []
    fake, _ = _fake_snapshot(tmp_path, 3600, calls)
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = hub_utils.are_progress_bars_disabled()
    r = sources.resolve("org/m", progress=False)
    assert r.download_s is None and r.downloaded_bytes == 0 and calls[0]["local_files_only"] is True
    assert hub_utils.are_progress_bars_disabled() == before  # progress setting restored
