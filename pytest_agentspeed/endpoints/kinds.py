"""Endpoint kinds: the spec prefixes ``--agentspeed-endpoint`` understands, and their parsers.

A kind is a prefix (``sim``, ``anthropic``, ``openai``, ``openai-responses``, or one a plugin
adds), the function that parses what follows ``PREFIX:`` into an
:class:`~pytest_agentspeed.endpoints.Endpoint`, and, for a plugin's kind, how to make the
client its sessions talk through. In a pytest run the kinds come from the
``pytest_agentspeed_endpoint_kinds`` hook (:mod:`pytest_agentspeed.edge.hookspecs`), whose
``trylast`` implementation returns :data:`BUILT_IN_KINDS`; outside pytest (the command line)
the built-in kinds are the ones known.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_agentspeed.endpoints.sim import parse_sim
from pytest_agentspeed.endpoints.specs import parse_anthropic, parse_openai
from pytest_agentspeed.errors import ConfigError

if TYPE_CHECKING:
    from pytest_agentspeed.endpoints.model import Endpoint

#: Makes the client a plugin's endpoint is talked to through: given the endpoint (its
#: ``base_url`` filled in), returns a :class:`pytest_agentspeed.clients.ModelClient`.
ClientFactory = Callable[["Endpoint"], Any]

#: What a kind's prefix may be: what comes before the first ``:`` of a spec.
PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass(frozen=True, slots=True)
class EndpointKind:
    """A spec prefix and what it means: what ``pytest_agentspeed_endpoint_kinds`` returns."""

    #: ``gateway`` makes ``gateway:...`` specs this kind's (lower case letters, digits, ``-``).
    prefix: str
    #: Parses a spec: called with the whole spec and what follows ``PREFIX:``; returns the
    #: endpoint (its ``api`` is the wire an external agent's proxy speaks to it). Raises
    #: :class:`~pytest_agentspeed.errors.ConfigError` for a bad spec, naming it.
    parse: Callable[[str, str], Endpoint]
    #: The spec's form for messages, e.g. ``gateway:MODEL``.
    form: str
    #: Makes the built-in agent's and replays' client for an endpoint of this kind; ``None``:
    #: the built-in client of the endpoint's wire.
    client: ClientFactory | None = None


def _responses(spec: str, rest: str) -> Endpoint:
    return parse_openai(spec, rest, api="responses")


#: The kinds that come with the package, as the built-in implementation of the
#: ``pytest_agentspeed_endpoint_kinds`` hook returns them.
BUILT_IN_KINDS: tuple[EndpointKind, ...] = (
    EndpointKind("sim", parse_sim, "sim:PROFILE[?options]"),
    EndpointKind("anthropic", parse_anthropic, "anthropic:MODEL[@BASE_URL]"),
    EndpointKind("openai", parse_openai, "openai:MODEL@BASE_URL"),
    EndpointKind("openai-responses", _responses, "openai-responses:MODEL@BASE_URL"),
)
_BUILT_IN = frozenset(kind.prefix for kind in BUILT_IN_KINDS)
# Like the agents' registry, module-level: specs are parsed when the settings are read.
_KINDS: dict[str, EndpointKind] = {kind.prefix: kind for kind in BUILT_IN_KINDS}


def use_endpoint_kinds(kinds: Sequence[EndpointKind]) -> None:
    """Make ``kinds`` the known endpoint kinds (what the hook returned, the built-in ones
    first).

    :raises ConfigError: when a kind other than the built-in one takes a built-in prefix, a
        prefix is not a valid one, or two kinds take one prefix.
    """
    known: dict[str, EndpointKind] = {}
    for kind in kinds:
        prefix: object = kind.prefix  # a plugin's, so checked as it comes
        if kind not in BUILT_IN_KINDS:
            if not isinstance(prefix, str) or not PREFIX_RE.match(prefix):
                raise ConfigError(
                    f"endpoint kind {prefix!r}: a prefix is lower case letters, digits and '-', "
                    "starting with a letter"
                )
            if prefix in _BUILT_IN:
                raise ConfigError(
                    f"endpoint kind {prefix!r} comes with agentspeed and cannot be replaced"
                )
            if prefix in known:
                raise ConfigError(f"endpoint kind {prefix!r} is added twice")
        known[kind.prefix] = kind
    _KINDS.clear()
    _KINDS.update(known)


def endpoint_kind(prefix: str) -> EndpointKind | None:
    """The kind of ``PREFIX:`` specs, if one is known."""
    return _KINDS.get(prefix)


def is_built_in(kind: EndpointKind) -> bool:
    """Whether ``kind`` is one of :data:`BUILT_IN_KINDS`."""
    return kind in BUILT_IN_KINDS


def kind_forms() -> str:
    """The known kinds' forms, for messages: ``sim:PROFILE[?options], anthropic:...``."""
    return ", ".join(kind.form for kind in _KINDS.values())
