"""Typed reads of a JSON object's fields, each failure one line that names the field.

A recording is read from a file anyone may have edited, cut or written with a later version:
every field is checked for its presence and JSON type before it is used, and the error says
which (``requests[3].gap_s: missing``).
"""

from __future__ import annotations

from typing import Any


class FieldError(ValueError):
    """A field that is missing or of the wrong type; the message names it."""


def kind_of(value: Any) -> str:
    """The JSON type of ``value``, as a message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


class Fields:
    """The fields of the JSON object ``data``, found at ``where`` (``""``: the top level)."""

    def __init__(self, data: Any, where: str = "") -> None:
        if not isinstance(data, dict):
            raise FieldError(f"{where or 'the document'}: {kind_of(data)}, not an object")
        self.data: dict[str, Any] = data
        self.where = where

    def name(self, key: str) -> str:
        """The field's dotted name, for messages."""
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str) -> Any:
        """The field's value, which must be there (``null`` counts as there)."""
        if key not in self.data:
            raise FieldError(f"{self.name(key)}: missing")
        return self.data[key]

    def _typed(self, key: str, value: Any, what: str, ok: bool) -> Any:
        if not ok:
            raise FieldError(f"{self.name(key)}: {kind_of(value)}, not {what}")
        return value

    def text(self, key: str) -> str:
        value = self.get(key)
        return str(self._typed(key, value, "a string", isinstance(value, str)))

    def opt_text(self, key: str) -> str | None:
        value = self.get(key)
        return None if value is None else self.text(key)

    def whole(self, key: str) -> int:
        value = self.get(key)
        ok = isinstance(value, int) and not isinstance(value, bool)
        return int(self._typed(key, value, "a whole number", ok))

    def opt_whole(self, key: str) -> int | None:
        return None if self.get(key) is None else self.whole(key)

    def number(self, key: str) -> float:
        value = self.get(key)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(self._typed(key, value, "a number", ok))

    def flag(self, key: str) -> bool:
        value = self.get(key)
        return bool(self._typed(key, value, "true or false", isinstance(value, bool)))

    def items(self, key: str) -> list[Any]:
        value = self.get(key)
        ok = isinstance(value, list)
        return list(self._typed(key, value, "a list", ok))

    def obj(self, key: str) -> Fields:
        """The field as an object, whose own fields are named below this one."""
        value = self.get(key)
        self._typed(key, value, "an object", isinstance(value, dict))
        return Fields(value, self.name(key))

    def numbers(self, key: str) -> dict[str, float]:
        """An object of numbers, as a dict."""
        inner = self.obj(key)
        return {name: inner.number(name) for name in inner.data}

    def optional_numbers(self, key: str) -> dict[str, float | None]:
        """An object of numbers or ``null``, as a dict."""
        inner = self.obj(key)
        return {name: None if v is None else inner.number(name) for name, v in inner.data.items()}
