"""Reading and writing results files: validation against the JSON Schema, upgrades of older
versions on load, and atomic writes (temporary file + rename), so a reader never sees half a file.
``writable_folder`` proves an output folder (results, report, checkpoint) writable before any
work is done.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.results.environment import summarize_environment
from bench.results.errors import ResultsError, UserError, write_failure
from bench.results.records import SCHEMA_ID, CaseKey, Results
from bench.results.requests import column_problem, compact_json, shortened
from bench.results.stats import Stat
from diagnostics.redact import redact_tree

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


_SCHEMA_NUMBER = re.compile(r"[0-9]{1,6}")
# Far above any real run (a 1,000-case sweep with 100 repetitions each is a few tens of MB); a
# larger file is not ours, and reading it whole would only exhaust the memory.
MAX_FILE_BYTES = 256 * 1024 * 1024
_RESTORE = "restore it from a copy, or move it away and re-run `gptoss bench`"
# A results file is about eight levels deep; anything near Python's recursion limit would crash
# the code that walks it later (validation, redaction, rendering), so it is refused on load.
MAX_DEPTH = 64


def _depth_exceeds(doc: Any, limit: int) -> bool:
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return False


def schema_version(doc: dict, source: str = "results") -> int:
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        raise ResultsError(
            f"{source} is not a gptoss-harness results file (no \"schema\": \"{SCHEMA_PREFIX}N\" field); "
            "pass the results.json that `gptoss bench` wrote."
        )
    number = schema[len(SCHEMA_PREFIX):]
    if not _SCHEMA_NUMBER.fullmatch(number):  # not "-1", " 1", "1.5", "1_0"
        raise ResultsError(f"{source} has an unreadable schema version {schema!r}; pass a results.json that `gptoss bench` wrote.")
    return int(number)


def upgrade(doc: dict, source: str = "results") -> dict:
    version = schema_version(doc, source)
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{source} uses results schema version {version}, newer than this gptoss-harness understands "
            f"({SCHEMA_VERSION}); upgrade with `pip install -U gptoss-harness`."
        )
    while version < SCHEMA_VERSION:
        step = UPGRADES.get(version)
        if step is None:
            raise ResultsError(f"{source} uses results schema version {version}, which no gptoss-harness release wrote; {_RESTORE}.")
        try:
            doc = step(doc)
        except (AttributeError, KeyError, TypeError, ValueError):  # a damaged body: not what that version wrote
            raise ResultsError(
                f"{source} says results schema version {version} but its content does not fit that version; {_RESTORE}."
            ) from None
        version += 1
    return doc


def parse(doc: Any, source: str = "results") -> Results:
    """Upgrade, validate and convert a decoded JSON document; one ResultsError on any problem."""
    if not isinstance(doc, dict):
        raise ResultsError(
            f"{source} is not a gptoss-harness results file (it holds a JSON {type(doc).__name__}, not an object); "
            "pass the results.json that `gptoss bench` wrote."
        )
    if _depth_exceeds(doc, MAX_DEPTH):
        raise ResultsError(f"{source} is nested far deeper than a results file; {_RESTORE}.")
    try:
        doc = upgrade(doc, source)
        validate(doc, source)
        return Results.from_dict(doc)
    except RecursionError:
        raise ResultsError(f"{source} is nested far deeper than a results file; {_RESTORE}.") from None
    except (AttributeError, KeyError, TypeError, ValueError):  # pragma: no cover - the schema should have said
        raise ResultsError(f"{source} does not fit the results schema; {_RESTORE}.") from None


def read_document(path: Path) -> Any:
    """The JSON value in ``path``, read defensively: any problem is one ResultsError sentence."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ResultsError(f"{path} does not exist; pass the results.json that `gptoss bench` wrote.") from None
    except OSError as e:
        raise ResultsError(f"{path} cannot be read ({e.strerror or e}); check the path and its permissions.") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ResultsError(
            f"{path} is larger than {MAX_FILE_BYTES // 2**20} MiB, far more than any results file; "
            "pass the results.json that `gptoss bench` wrote."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ResultsError(f"{path} is not text (byte {e.start} is not UTF-8): the file is damaged; {_RESTORE}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        what = "has data after the JSON document" if e.msg == "Extra data" else "is not valid JSON"
        raise ResultsError(
            f"{path} {what} (line {e.lineno}, column {e.colno}): the file is damaged; {_RESTORE}."
        ) from None
    except RecursionError:
        raise ResultsError(f"{path} is nested far deeper than a results file: the file is damaged; {_RESTORE}.") from None


def load(path: str | os.PathLike) -> Results:
    """Read a results file, upgrading older versions; one clear sentence on any problem.

    Every reader (report, compare, history add, export, bench --resume) comes through here."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    return parse(read_document(path), str(path))


def save(results: Results, path: str | os.PathLike) -> Path:
    """Validate and write atomically: a reader never sees half a file. Secrets (tokens, the
    userinfo and query values of URLs such as a server's base URL) are redacted on the way out."""
    path = Path(path)
    doc = redact_tree(results.to_dict())
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


def writable_folder(path: str | os.PathLike, fix: str) -> Path:
    """Create ``path`` (with its parents) and write and remove a probe file in it, so a
    read-only mount, ``/proc/self`` or a path that is a file ends in one sentence before any
    work is done. Raises ``UserError`` (``EnvironmentFailure`` for a full disk) ending with
    ``fix``, e.g. "pass --out a folder you can write to"."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a folder; {fix}.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".gptoss-write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise write_failure(e, path, fix) from None
    return path
