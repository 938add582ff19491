"""Typed access to a model config's ``parameters`` (all strings in Triton)."""

from __future__ import annotations

import json
from typing import Any


class ModelParameters:
    def __init__(self, model_config: dict[str, Any]) -> None:
        raw = model_config.get("parameters", {})
        self._values = {key: value["string_value"] for key, value in raw.items()}
        self._model = model_config.get("name", "?")

    def _get(self, key: str) -> str:
        if key not in self._values:
            raise KeyError(f"model {self._model!r}: config.pbtxt has no parameter {key!r}")
        return self._values[key]

    def text(self, key: str, default: str) -> str:
        """The parameter, or ``default`` when the config has none."""
        return self._values.get(key, default)

    def int(self, key: str) -> int:
        value = self._get(key)
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"model {self._model!r}: parameter {key!r}={value!r} is not an integer") from None

    def json(self, key: str) -> Any:
        value = self._get(key)
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"model {self._model!r}: parameter {key!r} is not valid JSON: {exc}") from None
