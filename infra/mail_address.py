"""What counts as one mail address, for recipients and the configured sender."""

from email.utils import getaddresses

from domain.validation import is_single_line


def is_one_address(value: str) -> bool:
    """`value` is one bare address, as a header parser reads it (no list, no display
    name, no comment). Validation refuses anything else on the way in
    (domain/validation.py); this stops a stored value that predates that."""
    return "@" in value and getaddresses([value]) == [("", value)]


def is_sender(value: str) -> bool:
    """One address, optionally with a display name: "GymLedger <no-reply@x.org>"."""
    found = getaddresses([value])
    return is_single_line(value) and len(found) == 1 and "@" in found[0][1]
