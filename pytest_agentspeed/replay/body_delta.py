"""A request body stored as a delta on the previous request's body, and read back exactly.

An agent's requests grow by appending to the conversation: turn ``n`` sends turn ``n - 1``'s
body with a reply and a tool result more. Stored whole, a 60-turn session holds its first
message 60 times; as deltas, once. A delta says, per top-level key of the body:

* nothing, when the value is unchanged;
* ``extend``: ``{"keep": n, "add": [...]}`` for a list that starts with the previous list's
  first ``n`` items (the conversation, whose last message lost its cache breakpoint);
* ``set``: the whole value otherwise (and for a key that is new);
* ``remove``: the keys the previous body had and this one has not;
* ``order``: the body's keys in order, only when the order differs from the previous body's
  (new keys last).

"Unchanged" is strict: same JSON types (``1`` is not ``1.0`` nor ``true``) and the same key
order in every object, so that :func:`apply_delta` gives back the very body, key order
included. The first body is a delta on ``{}``.
"""

from __future__ import annotations

from typing import Any

Body = dict[str, Any]


class DeltaError(ValueError):
    """A delta that does not apply to the body before it (a corrupt or hand-edited file)."""


def body_delta(previous: Body, body: Body) -> Body:
    """The delta that turns ``previous`` into ``body`` (see the module's docstring)."""
    whole: Body = {}
    extend: Body = {}
    for key, value in body.items():
        if key in previous:
            old = previous[key]
            if same(old, value):
                continue
            if isinstance(old, list) and isinstance(value, list):
                keep = _common_prefix(old, value)
                if keep:
                    extend[key] = {"keep": keep, "add": value[keep:]}
                    continue
        whole[key] = value
    removed = [key for key in previous if key not in body]
    delta: Body = {}
    if whole:
        delta["set"] = whole
    if extend:
        delta["extend"] = extend
    if removed:
        delta["remove"] = removed
    if _default_order(previous, removed, whole) != list(body):
        delta["order"] = list(body)
    return delta


def apply_delta(previous: Body, delta: Any) -> Body:
    """``previous`` with ``delta`` applied: the body :func:`body_delta` was given.

    The result shares unchanged values with ``previous``: treat both as read-only.

    :raises DeltaError: when ``delta`` is no delta, or does not apply to ``previous``.
    """
    if not isinstance(delta, dict):
        raise DeltaError(f"the body delta is a {_kind(delta)}, not an object")
    unknown = sorted(set(delta) - {"set", "extend", "remove", "order"})
    if unknown:
        raise DeltaError(f"the body delta has unknown keys {unknown}")
    whole = _part(delta, "set", dict)
    extend = _part(delta, "extend", dict)
    removed = _part(delta, "remove", list)
    out = dict(previous)
    for key in removed:
        if not isinstance(key, str) or key not in out:
            raise DeltaError(f"it removes {key!r}, which the previous body does not have")
        del out[key]
    for key, change in extend.items():
        old = previous.get(key)
        if not isinstance(old, list):
            raise DeltaError(f"it extends {key!r}, which is no list in the previous body")
        if not isinstance(change, dict) or set(change) != {"keep", "add"}:
            raise DeltaError(f"its extension of {key!r} is not {{keep, add}}")
        keep, add = change["keep"], change["add"]
        if not isinstance(keep, int) or isinstance(keep, bool) or not 0 < keep <= len(old):
            raise DeltaError(f"it keeps {keep!r} items of {key!r}, which has {len(old)}")
        if not isinstance(add, list):
            raise DeltaError(f"its extension of {key!r} adds a {_kind(add)}, not a list")
        out[key] = old[:keep] + add
    out.update(whole)
    if "order" in delta:
        order = delta["order"]
        if not isinstance(order, list) or sorted(order, key=str) != sorted(out, key=str):
            raise DeltaError("its key order does not name the body's keys")
        out = {key: out[key] for key in order}
    return out


def same(a: Any, b: Any) -> bool:
    """Whether two JSON values are the same, types and key order included."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _common_prefix(old: list[Any], new: list[Any]) -> int:
    n = 0
    for x, y in zip(old, new, strict=False):
        if not same(x, y):
            break
        n += 1
    return n


def _default_order(previous: Body, removed: list[str], whole: Body) -> list[str]:
    """The key order :func:`apply_delta` gives without an ``order``: the previous body's
    (less the removed keys), then the new keys as set."""
    kept = [key for key in previous if key not in removed]
    return kept + [key for key in whole if key not in previous]


def _part(delta: Body, name: str, kind: type) -> Any:
    value = delta.get(name, kind())
    if not isinstance(value, kind):
        raise DeltaError(f"its {name!r} is a {_kind(value)}, not a {_kind(kind())}")
    return value


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else "null"
    )
