"""The README's Options section is the user-facing reference for slugify."""

import inspect
from pathlib import Path

import pytest

from slug import slugify

README = Path(__file__).resolve().parent.parent / "README.md"


def options_section() -> str:
    text = README.read_text(encoding="utf-8")
    _, found, rest = text.partition("\n## Options\n")
    assert found, "README.md has no '## Options' section"
    return rest.split("\n## ", 1)[0]


KEYWORD_ONLY = [
    name
    for name, param in inspect.signature(slugify).parameters.items()
    if param.kind is inspect.Parameter.KEYWORD_ONLY
]


@pytest.mark.parametrize("name", KEYWORD_ONLY)
def test_every_option_is_documented(name: str) -> None:
    assert f"`{name}`" in options_section()


def test_separator_is_documented() -> None:
    section = options_section()
    assert "`separator`" in section
    assert "separator=" in section, "show an example call using separator"
