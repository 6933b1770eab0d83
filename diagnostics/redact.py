"""Secrets never leave the machine: every output (table, JSON, HTML, results files) is redacted.

Two rules, applied to the environment variables at probe time and again to the whole report at
the JSON edge (which every renderer reads from):

* a variable whose NAME contains TOKEN, KEY, SECRET, PASSWORD, PASS, AUTH or CREDENTIAL has its
  value replaced by ``<redacted>``;
* any string VALUE that holds something shaped like a Hugging Face token (``hf_`` + 20 or more
  letters/digits) has it replaced by ``<redacted>``, and every URL in it goes through
  ``redact_url``: its userinfo (``user:password@`` or a bare ``TOKEN@``) and the value of every
  query and fragment parameter are replaced, so ``https://TOKEN@host/v1?api_key=K`` becomes
  ``https://<redacted>@host/v1?api_key=<redacted>``.

``redact_url`` is the one function for a URL the user gave (``HF_ENDPOINT``, ``--base-url``):
call it before such a URL is printed or written anywhere.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"

SECRET_NAME_PARTS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASS", "AUTH", "CREDENTIAL")

_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")
# A URL inside text: a scheme, then anything up to white space, a quote or an angle bracket; the
# last character is not sentence punctuation, so "(see https://h/x?a=1)." keeps its ")."
_URL_IN_TEXT = re.compile(r"[a-z][a-z0-9+.-]*://[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}]", re.IGNORECASE)
_URL_PARTS = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<authority>[^/?#]*)(?P<path>[^?#]*)"
                        r"(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?$", re.IGNORECASE | re.DOTALL)
_ASSIGNED_SECRET = re.compile(
    r"(?P<name>\b[A-Za-z_]*(?:TOKEN|KEY|SECRET|PASSWORD|PASS|AUTH|CREDENTIAL)[A-Za-z_]*\s*=\s*)(?P<value>[^\s,;&#'\"()<>]+)",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS)


def _redact_params(params: str) -> str:
    """``a=1&b=2`` -> ``a=<redacted>&b=<redacted>``; a bare item (``?TOKEN``) is redacted whole."""
    out = []
    for item in re.split(r"([&;])", params):
        if item in ("&", ";", "") or item == REDACTED:
            out.append(item)
            continue
        name, eq, value = item.partition("=")
        out.append(f"{name}={REDACTED if value else ''}" if eq else REDACTED)
    return "".join(out)


def redact_url(url: str) -> str:
    """``url`` with its userinfo and the values of its query and fragment parameters redacted.

    ``https://TOKEN@host/v1?api_key=K&x=1#t=2`` -> ``https://<redacted>@host/v1?api_key=<redacted>&x=<redacted>#t=<redacted>``.
    Scheme, host, port and path stay, so the output still says where the URL points. Text that is
    not a URL (no ``scheme://``) comes back unchanged; nothing raises."""
    m = _URL_PARTS.match(url) if isinstance(url, str) else None
    if m is None:
        return url
    authority = m.group("authority")
    if "@" in authority:
        authority = REDACTED + "@" + authority.rsplit("@", 1)[1]
    out = m.group("scheme") + authority + m.group("path")
    if m.group("query") is not None:
        out += "?" + _redact_params(m.group("query"))
    if m.group("fragment") is not None:
        out += "#" + _redact_params(m.group("fragment"))
    return out


def redact_text(text: str) -> str:
    """Redact token-shaped values, every URL (``redact_url``) and ``NAME=value`` pairs with a secret NAME."""
    if not text:
        return text
    text = _HF_TOKEN.sub(REDACTED, text)
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    text = _ASSIGNED_SECRET.sub(lambda m: m.group("name") + REDACTED, text)
    return text


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
