"""What counts as one mail address, for recipients and the configured sender."""

import re
from email.utils import getaddresses

from domain.validation import is_single_line

# RFC 5322's dot-atom on both sides of the @ (ASCII words joined by single dots): what
# nearly every stored address is, and what the header parser reads back unchanged
# (tests/unit/test_mail_address.py holds the two to that for any such string).
_DOT_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_PLAIN_ADDRESS = re.compile(f"{_DOT_ATOM}@{_DOT_ATOM}")


def is_one_address(value: str) -> bool:
    """`value` is one bare address, as a header parser reads it (no list, no display
    name, no comment). Validation refuses anything else on the way in
    (domain/validation.py); this stops a stored value that predates that.

    A plain address is known to be one without the parser, which cost the worker a
    tenth of its CPU per mail (bench/README.md)."""
    if _PLAIN_ADDRESS.fullmatch(value):
        return True
    return "@" in value and getaddresses([value]) == [("", value)]


def is_sender(value: str) -> bool:
    """One address, optionally with a display name: "GymLedger <no-reply@x.org>"."""
    found = getaddresses([value])
    return is_single_line(value) and len(found) == 1 and "@" in found[0][1]
