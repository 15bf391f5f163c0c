"""The published patterns (domain/validation.py) accept exactly what the rules accept.

The API schema carries these patterns, so a client that keeps to them must never be
refused, and a value outside them must never be stored. Each test draws from the
pattern itself (all of it must pass the rule) and from text rich in the characters
the rules care about (blanks, controls, line breaks, specials), where the pattern
and the rule must agree both ways.
"""

import re
import sys
from collections.abc import Callable

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain import validation as v
from domain.errors import InvalidValue

BLANKS = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
# Controls, email specials, and letters whose case changes length (\u0130) or lands
# on ASCII (\u017f long s, \u0131 dotless i). No lone surrogates: JSON decoding
# refuses them before any rule runs (test_requests_are_unicode_text below), hence
# characters that UTF-8 can encode.
TRICKY = (
    BLANKS
    + "\x00\x01\x08\x0e\x1f\x7f"
    + '@()<>[]:;\\,".'
    + "aZ\xe9\u20ac\U0001f600\u0130\u017f\u0131"
)
tricky_text = st.text(st.one_of(st.sampled_from(TRICKY), st.characters(codec="utf-8")), max_size=80)


def accepts(rule: Callable[[str], object], value: str) -> bool:
    try:
        rule(value)
    except InvalidValue:
        return False
    return True


def matches(pattern: str, value: str) -> bool:
    # JSON Schema patterns are searched, not anchored by the validator: ours anchor.
    return re.search(pattern, value) is not None


TEXT_RULES = [
    ("name", v.text_pattern(40, single_line=True), lambda s: v.single_line_text("f", s, 40)),
    ("text", v.text_pattern(40), lambda s: v.required_text("f", s, 40)),
    ("optional", v.text_pattern(40, required=False), lambda s: v.optional_text("f", s, 40)),
    ("email", v.EMAIL_PATTERN, lambda s: v.email("f", s)),
    ("currency", v.CURRENCY_PATTERN, v.currency),
    ("timezone", v.timezone_pattern(), v.timezone),
    ("card_code", v.CARD_CODE_PATTERN, lambda s: v.card_code("f", s)),
]


@pytest.mark.parametrize(("_", "pattern", "rule"), TEXT_RULES, ids=[r[0] for r in TEXT_RULES])
@settings(max_examples=100)
@given(data=st.data())
def test_what_the_pattern_generates_the_rule_accepts(
    _: str, pattern: str, rule: Callable[[str], object], data: st.DataObject
) -> None:
    value = data.draw(st.from_regex(pattern))
    assert accepts(rule, value), repr(value)


@pytest.mark.parametrize(("_", "pattern", "rule"), TEXT_RULES, ids=[r[0] for r in TEXT_RULES])
@settings(max_examples=300)
@given(value=tricky_text)
@example(value=" Ada ")
@example(value="\x1cAda\x1f")
@example(value="A\x1cda")
@example(value="A\nda")
@example(value="x" * 40 + "  ")
@example(value="x" * 41)
@example(value="a@b.co")
@example(value="a@b.c")
@example(value="a@b..co")
@example(value=" ann@example.org\u3000")
@example(value="İ" * 64 + "@example.org")
@example(value="eur")
@example(value="u\u017fd")  # long s upper-cases to S
@example(value=" EUR")
@example(value="Europe/Berlin")
@example(value="Europe/Berlin ")
@example(value="Etc/GMT+1")
@example(value="America/Argentina/Buenos_Aires")
@example(value="0004211733")
@example(value="GYM-7F3A ")
@example(value="x" * 64)
@example(value="x" * 65)
@example(value="~!")
def test_pattern_and_rule_agree(
    _: str, pattern: str, rule: Callable[[str], object], value: str
) -> None:
    assert matches(pattern, value) == accepts(rule, value), repr(value)


def test_requests_are_unicode_text() -> None:
    """Why the patterns need not name lone surrogates."""
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(b'"a\\udabdb"')


def test_patterns_compile_in_an_ecma_style_engine() -> None:
    """Rust's regex (jsonschema-rs, which schemathesis validates with) has no lone
    surrogates and no Python-only syntax: a pattern it cannot compile is dropped."""
    from schemathesis.core.jsonschema.patterns import is_valid_jsonschema_rs_regex

    for _, pattern, _ in TEXT_RULES:
        assert is_valid_jsonschema_rs_regex(pattern), pattern


def test_long_addresses_agree_at_the_limit() -> None:
    local = "a" * 64
    for length in (253, 254, 255):
        domain = "b" * (length - len(local) - 1 - 4) + ".org"
        address = f"{local}@{domain}"
        assert len(address) == length
        assert matches(v.EMAIL_PATTERN, address) == accepts(lambda s: v.email("f", s), address)
        assert accepts(lambda s: v.email("f", s), address) == (length <= 254)


def test_every_time_zone_name_matches_and_near_misses_do_not() -> None:
    names = v.timezone_names()
    assert {"UTC", "Europe/Berlin"} <= set(names)
    for name in names:
        assert v.timezone(name) == name
        assert matches(v.timezone_pattern(), name), name
    for almost in (" UTC", "utc", "Europe/Berlin ", "Europe/Atlantis", "", "Europe/", "UTC\n"):
        assert not accepts(v.timezone, almost)
        assert not matches(v.timezone_pattern(), almost), almost


@settings(max_examples=300)
@given(value=st.text(st.sampled_from("ab \x00é"), max_size=90))
def test_password_pattern_and_length_are_what_the_rule_checks_first(value: str) -> None:
    shaped = matches(v.PASSWORD_PATTERN, value) and v.PASSWORD_MIN <= len(value) <= v.PASSWORD_MAX
    try:
        v.password(value)
        refused_for = None
    except InvalidValue as refused:
        refused_for = refused.message
    if not shaped:
        assert refused_for is not None
        assert "too common" not in refused_for
    else:  # only the strength rule, which no pattern expresses, may still refuse it
        assert refused_for is None or "too common" in refused_for
