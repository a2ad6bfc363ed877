"""Side requests: an agent's model calls beside its main loop, and their short answers.

Agents ask their model for more than the next step: Claude Code asks for a session title (no
tools, a JSON schema ``{title}`` in ``output_config.format``), other agents for summaries or
classifications. Such a request gets a short, well-formed answer (valid JSON for the schema when
one is asked for) and never a step of the task's trajectory: the trajectory's position comes
from the main conversation's assistant messages, which a side request does not add to.

A request is a side request when it asks for structured output (Anthropic
``output_config.format``, OpenAI ``response_format`` or the Responses API's ``text.format`` of
type ``json_schema`` or ``json_object``) or offers an empty ``tools`` list. A request with no
``tools`` field at all is not one: scripted clients and the simulator's own tests send
conversations without tools and expect the trajectory, as they always have.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from pytest_agentspeed.trajectory_file import PlannedTurn

__all__ = ["json_schema", "side_reason", "side_turn", "title_of"]

#: The title of a session whose task the simulator does not know.
UNKNOWN_TITLE: Final = "Simulated session"
#: How deep a schema is followed; deeper parts get their type's empty value.
_MAX_DEPTH: Final = 8


def side_reason(body: Mapping[str, Any], wire: str) -> str | None:
    """Why the request is a side request (``"structured-output"``, ``"no-tools"``), or
    ``None`` for a main-loop request."""
    if _format(body, wire) is not None:
        return "structured-output"
    tools = body.get("tools")
    if isinstance(tools, list) and not tools:
        return "no-tools"
    return None


def json_schema(body: Mapping[str, Any], wire: str) -> Mapping[str, Any] | None:
    """The JSON schema the answer must match; ``{}`` (any object) for OpenAI's
    ``json_object``; ``None`` when no structured output is asked for."""
    spec = _format(body, wire)
    if spec is None:
        return None
    if wire == "openai":
        inner = spec.get("json_schema")
        schema = inner.get("schema") if isinstance(inner, dict) else None
    else:
        schema = spec.get("schema")
    return schema if isinstance(schema, dict) else {}


def side_turn(body: Mapping[str, Any], wire: str, title: str) -> PlannedTurn:
    """The short answer to a side request about a session titled ``title``."""
    schema = json_schema(body, wire)
    if schema is None:
        return PlannedTurn(text=f"{title}.")
    # OpenAI's json_object mode names no schema: any object will do, and a title is one.
    value = _instance(schema, title, 0) if schema else {"title": title}
    return PlannedTurn(text=json.dumps(value, ensure_ascii=False))


def title_of(task_id: str | None) -> str:
    """A session title from a task id: ``fix-pagination-off-by-one`` gives ``Fix pagination
    off by one``."""
    if not task_id:
        return UNKNOWN_TITLE
    words = task_id.replace("_", "-").split("-")
    text = " ".join(w for w in words if w)
    return text[:1].upper() + text[1:] if text else UNKNOWN_TITLE


def _format(body: Mapping[str, Any], wire: str) -> Mapping[str, Any] | None:
    if wire == "responses":
        text = body.get("text")
        spec = text.get("format") if isinstance(text, dict) else None
        if isinstance(spec, dict) and spec.get("type") in ("json_schema", "json_object"):
            return spec
        return None
    if wire == "openai":
        spec = body.get("response_format")
        if isinstance(spec, dict) and spec.get("type") in ("json_schema", "json_object"):
            return spec
        return None
    config = body.get("output_config")
    spec = config.get("format") if isinstance(config, dict) else None
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        return spec
    return None


def _instance(schema: Mapping[str, Any], title: str, depth: int) -> Any:
    """A small value matching ``schema``: its required properties, strings set to the title."""
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options and isinstance(options[0], dict):
            return _instance(options[0], title, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = schema.get("required")
        names = required if isinstance(required, list) else list(properties)
        if depth >= _MAX_DEPTH:
            return {}
        return {
            str(name): _instance(properties.get(name) or {"type": "string"}, title, depth + 1)
            for name in names
        }
    if kind == "array":
        items = schema.get("items")
        count = schema.get("minItems", 0)
        if isinstance(items, dict) and isinstance(count, int) and count > 0:
            return [_instance(items, title, depth + 1) for _ in range(count)]
        return []
    if kind in ("integer", "number"):
        minimum = schema.get("minimum", 0)
        return minimum if isinstance(minimum, int | float) else 0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return title
