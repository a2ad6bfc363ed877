"""Stream events encoded once with a hole for their text, filled in per event.

A simulated stream sends thousands of delta events that differ only in one string: the event
type, the block index, the ids and the JSON around them are the same every time. Encoding the
whole event with ``json.dumps`` per delta cost about 5 us; an :class:`EventTemplate` encodes it
once with a placeholder, splits the bytes there, and joins the parts with the escaped text,
escaped by the very function ``json.dumps`` uses for strings (``ensure_ascii``, the default).
The bytes are the same; ``tests/test_sse_properties.py`` holds the two against each other.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring_ascii

#: Stands where the text goes. No real field of an event holds it (a NUL-delimited name).
HOLE = "\x00agentspeed-text\x00"
_HOLE_JSON = encode_basestring_ascii(HOLE).encode()


class EventTemplate:
    """The bytes of an event for any text, from one rendering of it.

    :param render: encodes the event for a text; called once, with :data:`HOLE`. The text may
        appear more than once (OpenAI's ``reasoning_content`` and ``reasoning`` carry the same);
        each place is filled.
    :raises ValueError: the rendering does not contain the text as a JSON string.
    """

    __slots__ = ("_parts",)

    def __init__(self, render: Callable[[str], bytes]) -> None:
        self._parts = render(HOLE).split(_HOLE_JSON)
        if len(self._parts) < 2:
            raise ValueError("the event's rendering does not hold its text as a JSON string")

    def __call__(self, text: str) -> bytes:
        """The event carrying ``text``: byte for byte what ``render(text)`` gives."""
        return encode_basestring_ascii(text).encode().join(self._parts)


#: Stands where the sequence number goes (a number no stream reaches).
SEQUENCE_HOLE = 987_654_321_987_654_321
_SEQUENCE_BYTES = str(SEQUENCE_HOLE).encode()


class NumberedEventTemplate:
    """An :class:`EventTemplate` with a second hole, for the event's sequence number (the
    Responses API numbers every event of a stream).

    :param render: encodes the event for a text and a sequence number; called once, with
        :data:`HOLE` and :data:`SEQUENCE_HOLE`.
    :raises ValueError: the rendering does not hold the text as a JSON string, or not the
        number.
    """

    __slots__ = ("_parts",)

    def __init__(self, render: Callable[[str, int], bytes]) -> None:
        raw = render(HOLE, SEQUENCE_HOLE)
        self._parts = [part.split(_SEQUENCE_BYTES) for part in raw.split(_HOLE_JSON)]
        if len(self._parts) < 2 or sum(len(p) - 1 for p in self._parts) < 1:
            raise ValueError("the event's rendering does not hold its text and its number")

    def __call__(self, text: str, sequence_number: int) -> bytes:
        """The event carrying ``text`` and numbered ``sequence_number``."""
        number = str(sequence_number).encode()
        return encode_basestring_ascii(text).encode().join(number.join(p) for p in self._parts)
