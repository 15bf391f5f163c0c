"""The mail address check's fast path never accepts what the header parser would not."""

from email.utils import getaddresses

from hypothesis import example, given
from hypothesis import strategies as st

from infra.mail_address import _PLAIN_ADDRESS, is_one_address

ATOM_CHARS = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
atoms = st.text(st.sampled_from(ATOM_CHARS), min_size=1, max_size=8)
dot_atoms = st.lists(atoms, min_size=1, max_size=4).map(".".join)
near_addresses = st.text(st.sampled_from(ATOM_CHARS + '.@ "<>(),;:\\[]\t'), max_size=30)


def parser_says_one(value: str) -> bool:
    return "@" in value and getaddresses([value]) == [("", value)]


@given(st.tuples(dot_atoms, dot_atoms).map("@".join))
def test_every_plain_address_is_one_the_parser_reads_back(value: str) -> None:
    assert _PLAIN_ADDRESS.fullmatch(value)
    assert parser_says_one(value)


@example("a@b@c")
@example("a..b@x.org")
@example("<a@b.org>")
@example("a@b.org, c@d.org")
@example("a@b.org (comment)")
@example('"a b"@c.org')
@example(".a@b.org")
@given(near_addresses)
def test_the_fast_path_agrees_with_the_parser(value: str) -> None:
    assert is_one_address(value) == parser_says_one(value)
