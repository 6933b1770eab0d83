"""What the user's ``--model`` names, parsed once: a hub id, a local checkpoint folder or
``synthetic:<name>``, with the gpt-oss shape when it is one this tool knows.

``gptoss check`` and ``gptoss bench`` parse the same way and refuse the same values with the same
sentence; everything below them (sources, synthetic checkpoints, the roofline, the memory check)
takes the parsed ``ModelRef`` instead of reading the raw string again. Torch-free: the check
imports it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from diagnostics.errors import UserError
from diagnostics.models import SPECS, ModelSpec, spec_for, spec_from_config

DEFAULT_MODEL = "openai/gpt-oss-20b"
SYNTHETIC_PREFIX = "synthetic:"
#: The synthetic checkpoints: a tiny one that runs anywhere, and the real shapes.
SYNTHETIC_NAMES = ("tiny", *SPECS)

HUB = "hub"
LOCAL = "local"
SYNTHETIC = "synthetic"
SERVED = "server"  # a name an OpenAI-compatible server serves; only --backend openai

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


@dataclass(frozen=True)
class ModelRef:
    text: str  # as the user gave it (stripped): the model id results files record
    kind: str  # hub | local | synthetic | server
    name: str  # hub: the repo id; local: the folder; synthetic: tiny, gpt-oss-20b, gpt-oss-120b
    spec: ModelSpec | None = None  # the gpt-oss shape, when it is one of the known ones

    @property
    def folder(self) -> Path | None:
        """The local folder (a checkpoint, or the one a server was started on), else None."""
        return Path(self.name) if self.kind in (LOCAL, SERVED) and Path(self.name).is_dir() else None

    @classmethod
    def parse(cls, text: str | None) -> "ModelRef":
        """Parse ``--model``; a UserError with one sentence for a value that names nothing."""
        model = (text or "").strip()
        if not model:
            raise UserError("--model is empty; pass a hub id such as openai/gpt-oss-20b, a checkpoint folder, or synthetic:tiny.")
        if model.startswith(SYNTHETIC_PREFIX):
            name = model[len(SYNTHETIC_PREFIX):]
            if name not in SYNTHETIC_NAMES:
                known = ", ".join(SYNTHETIC_PREFIX + n for n in SYNTHETIC_NAMES)
                raise UserError(f"unknown synthetic model '{model}'; use one of {known}.")
            return cls(model, SYNTHETIC, name, SPECS.get(name))
        folder = Path(os.path.expanduser(model))
        if folder.is_dir():
            return cls(model, LOCAL, str(folder), _spec_from_folder(folder))
        if folder.exists():
            raise UserError(f"{model} is a file; pass the folder that holds config.json and the weights.")
        if _looks_like_path(model):
            raise UserError(f"the folder {model} does not exist; check the path, or pass a hub id such as openai/gpt-oss-20b.")
        if model in SYNTHETIC_NAMES:
            hint = f" (or openai/{model} for the real weights)" if model in SPECS else ""
            raise UserError(f"'{model}' is not a hub id; use synthetic:{model} for random weights of that shape{hint}.")
        if not _HUB_ID.match(model) or ".." in model or "--" in model:
            raise UserError(
                f"'{model}' is neither a hub id (org/name), an existing folder nor synthetic:<name>; "
                "pass e.g. openai/gpt-oss-20b, ./my-checkpoint or synthetic:tiny."
            )
        return cls(model, HUB, model, spec_for(model))

    @classmethod
    def served(cls, text: str) -> "ModelRef":
        """A served model name (``--backend openai``): any name; a local folder when it is one
        (``transformers serve DIR`` serves the folder's path), with that folder's shape."""
        model = text.strip()
        folder = Path(os.path.expanduser(model))
        if folder.is_dir():
            return cls(model, SERVED, str(folder), _spec_from_folder(folder))
        return cls(model, SERVED, model, spec_for(model))


def canonical_model(model: str) -> str:
    """``gpt-oss-20b`` -> ``openai/gpt-oss-20b`` (the check's shorthand); anything else unchanged."""
    m = model.strip()
    spec = spec_for(m)
    if spec and "/" not in m and not m.startswith(SYNTHETIC_PREFIX):
        return spec.hub_id
    return m


def _looks_like_path(model: str) -> bool:
    return (
        model.startswith(("/", "./", "../", "~", ".\\"))
        or model in (".", "..")
        or "\\" in model
        or model.count("/") > 1
        or model.endswith("/")
    )


def _spec_from_folder(folder: Path) -> ModelSpec | None:
    """The gpt-oss shape of a checkpoint folder, read from its config.json."""
    try:
        return spec_from_config(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
