"""Reading and writing results files: validation against the JSON Schema, upgrades of older
versions on load, and atomic writes (temporary file + rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.results.environment import summarize_environment
from bench.results.errors import ResultsError
from bench.results.records import SCHEMA_ID, CaseKey, Results
from bench.results.requests import column_problem, compact_json, shortened
from bench.results.stats import Stat

SCHEMA_PREFIX = "gptoss-harness/results/"
SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).parent / "schema" / "results-1.schema.json"


@lru_cache(maxsize=1)
def json_schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def validate(doc: dict, source: str = "results") -> None:
    """Raise ResultsError with one readable sentence when ``doc`` does not fit the schema."""
    import jsonschema

    doc = _requests_checked(doc, source)
    validator = jsonschema.Draft202012Validator(json_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise ResultsError(
            f"{source} is not a valid gptoss-harness results file ({where}: {first.message}); "
            "re-run `gptoss bench` to produce a new one."
        )


def _requests_checked(doc: dict, source: str) -> dict:
    """Per-request columns (bench.results.requests) are checked in Python, and the schema sees
    them shortened: validating a million values one by one would take minutes."""
    cases = doc.get("cases") if isinstance(doc, dict) else None
    if not isinstance(cases, list) or not any(isinstance(c, dict) and isinstance(c.get("requests"), dict) for c in cases):
        return doc
    light = []
    for i, c in enumerate(cases):
        if isinstance(c, dict) and isinstance(c.get("requests"), dict):
            problem = column_problem(c["requests"])
            if problem:
                raise ResultsError(
                    f"{source} is not a valid gptoss-harness results file (cases/{i}/requests: {problem}); "
                    "re-run `gptoss bench` to produce a new one."
                )
            c = {**c, "requests": shortened(c["requests"])}
        light.append(c)
    return {**doc, "cases": light}


def _dump(doc: dict) -> str:
    """The document as indented JSON, with each case's per-request columns one line per column."""
    blocks: dict[str, dict] = {}
    cases = []
    for i, c in enumerate(doc.get("cases", [])):
        if isinstance(c.get("requests"), dict):
            marker = f"@@gptoss-requests-{i}@@"
            blocks[json.dumps(marker)] = c["requests"]
            c = {**c, "requests": marker}
        cases.append(c)
    text = json.dumps({**doc, "cases": cases}, indent=1, allow_nan=False)
    for marker, block in blocks.items():
        at = text.index(marker)
        indent = text[text.rindex("\n", 0, at) + 1: at].split('"')[0]
        indent = " " * (len(indent) - len(indent.lstrip(" ")))
        text = text.replace(marker, compact_json(block, indent), 1)
    return text


def _upgrade_0_to_1(doc: dict) -> dict:
    """Pre-release files (``results/0``): cases held raw samples only, the output length was
    called ``length``, and there was no ``env_summary``. Statistics are computed from the raw
    samples; nothing is invented."""
    doc = dict(doc)
    cases = []
    for c in doc.get("cases", []):
        c = dict(c)
        key = dict(c.get("key", {}))
        if "length" in key:
            key["output_len"] = key.pop("length")
        c["key"] = key
        c["id"] = CaseKey.from_dict(key).id
        samples = c.pop("samples", {})
        c["metrics"] = {name: Stat.of(values).to_dict() for name, values in samples.items()}
        cases.append(c)
    doc["cases"] = cases
    env = doc.get("environment", {})
    doc.setdefault("env_summary", summarize_environment(env) if env else {})
    doc.setdefault("gpu", {})
    doc.setdefault("complete", doc.get("finished_at") is not None)
    doc["schema"] = SCHEMA_ID
    return doc


UPGRADES = {0: _upgrade_0_to_1}


def schema_version(doc: dict, source: str = "results") -> int:
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        raise ResultsError(
            f"{source} is not a gptoss-harness results file (no \"schema\": \"{SCHEMA_PREFIX}N\" field); "
            "pass the results.json that `gptoss bench` wrote."
        )
    try:
        return int(schema[len(SCHEMA_PREFIX):])
    except ValueError:
        raise ResultsError(f"{source} has an unreadable schema version {schema!r}; pass a results.json that `gptoss bench` wrote.") from None


def upgrade(doc: dict, source: str = "results") -> dict:
    version = schema_version(doc, source)
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{source} uses results schema version {version}, newer than this gptoss-harness understands "
            f"({SCHEMA_VERSION}); upgrade with `pip install -U gptoss-harness`."
        )
    while version < SCHEMA_VERSION:
        doc = UPGRADES[version](doc)
        version += 1
    return doc


def parse(doc: Any, source: str = "results") -> Results:
    """Upgrade, validate and convert a decoded JSON document."""
    doc = upgrade(doc, source)
    validate(doc, source)
    return Results.from_dict(doc)


def load(path: str | os.PathLike) -> Results:
    """Read a results file, upgrading older versions; one clear sentence on any problem."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path} does not exist; pass the results.json that `gptoss bench` wrote.") from None
    except OSError as e:
        raise ResultsError(f"{path} cannot be read ({e.strerror}); check the path and its permissions.") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ResultsError(
            f"{path} is not valid JSON (line {e.lineno}, column {e.colno}): the file is damaged; "
            "re-run the benchmark or restore it from a copy."
        ) from None
    return parse(doc, str(path))


def save(results: Results, path: str | os.PathLike) -> Path:
    """Validate and write atomically: a reader never sees half a file."""
    path = Path(path)
    doc = results.to_dict()
    validate(doc, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_dump(doc))
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
