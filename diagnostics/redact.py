"""Secrets never leave the machine: every output (table, JSON, HTML, results files) is redacted.

Two rules, applied to the environment variables at probe time and again to the whole report at
the JSON edge (which every renderer reads from):

* a variable whose NAME contains TOKEN, KEY, SECRET, PASSWORD, PASS, AUTH or CREDENTIAL has its
  value replaced by ``<redacted>``;
* any string VALUE that holds something shaped like a Hugging Face token (``hf_`` + 20 or more
  letters/digits) has it replaced by ``<redacted>``; so have the userinfo (``user:password@`` or
  ``TOKEN@``) and every query value (``?api_key=...``) of any URL in it (``redact_url``).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

REDACTED = "<redacted>"

SECRET_NAME_PARTS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASS", "AUTH", "CREDENTIAL")

_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)
_ASSIGNED_SECRET = re.compile(
    r"(?P<name>\b[A-Za-z_]*(?:TOKEN|KEY|SECRET|PASSWORD|PASS|AUTH|CREDENTIAL)[A-Za-z_]*\s*=\s*)(?P<value>[^\s,;&'\"]+)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS)


def redact_text(text: str) -> str:
    """Redact token-shaped values, URL credentials and ``NAME=value`` pairs with a secret NAME."""
    if not text:
        return text
    text = _HF_TOKEN.sub(REDACTED, text)
    text = _URL.sub(_redact_url_in_text, text)
    text = _ASSIGNED_SECRET.sub(lambda m: m.group("name") + REDACTED if m.group("value") != REDACTED else m.group(0), text)
    return text


def redact_url(url: str) -> str:
    """``url`` with its userinfo and the value of every query parameter replaced by ``<redacted>``
    (names kept: ``https://<redacted>@host/v1?api_key=<redacted>``)."""
    if not url or ("@" not in url and "?" not in url):
        return url
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # not parseable as a URL: redact whatever follows the scheme
        return re.sub(r"://.*", "://" + REDACTED, url, flags=re.DOTALL)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rpartition("@")[2]
    query = "&".join(_redact_pair(p) for p in re.split(r"[&;]", parts.query) if p)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_pair(pair: str) -> str:
    name, eq, value = pair.partition("=")
    return name + eq + (REDACTED if value else "")


def _redact_url_in_text(match: re.Match) -> str:
    url = match.group(0)
    tail = len(url) - len(url.rstrip(".,;:)]}"))  # punctuation after a URL is not part of it
    return redact_url(url[: len(url) - tail]) + url[len(url) - tail:]


def redact_env(variables: dict[str, str]) -> dict[str, str]:
    """Environment variables with secrets (by name or by value) replaced."""
    return {k: (REDACTED if is_secret_name(k) else redact_text(v)) for k, v in variables.items()}


def redact_tree(obj: Any) -> Any:
    """A copy of a JSON-like tree with every string value passed through ``redact_text``."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        return {k: redact_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_tree(v) for v in obj]
    return obj
