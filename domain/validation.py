"""Field rules shared by the aggregates. Pure functions: no I/O, no clock."""

import re
import threading
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from zxcvbn import zxcvbn

from domain.errors import InvalidValue

# Deliberately pragmatic: one "@", a dot in the domain, no spaces. Full RFC 5322
# parsing rejects nothing real users type and accepts addresses mail servers refuse.
# Emails become mail recipients, so none of RFC 5322's specials either: unquoted,
# `,` `;` `<` `(` `:` `[` `"` `\` would let one value name several addresses, or a
# display name and another address ("a@b.org,c.org", "x<evil@attacker.org>").
_ATOM = r"[^\s@()<>\[\]:;\\,\"]"
_EMAIL = re.compile(rf"^{_ATOM}{{1,64}}@{_ATOM}+\.(?:(?!\.){_ATOM}){{2,}}$")

# ISO 4217 active alphabetic codes (2024 list).
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL
    BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
    IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
    SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS
    VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA
    XXX YER ZAR ZMW ZWG ZWL""".split()
)

PASSWORD_MIN, PASSWORD_MAX = 8, 72
# zxcvbn's scores: 0 and 1 are under a million guesses (the most common passwords,
# their l33t spellings, keyboard walks, repeats, dates); 2 is "safe from unthrottled
# online guessing", which is what a login endpoint faces. zxcvbn credits digits and
# symbols around a word with enough guesses to lift "password-123" to 2, so the
# password is also scored without them (`_core`).
PASSWORD_MIN_SCORE = 2
# Everything but letters: digits, punctuation, blanks, underscores.
_DECORATION = r"[\W\d_]*"
_CORE = re.compile(rf"^{_DECORATION}(?P<core>.*?){_DECORATION}$", re.DOTALL)
GYM_TYPE_MAX = 50
PHONE_MAX = 40
NAME_MAX = 200
TEXT_MAX = 2000
CARD_CODE_MAX = 64


# Control characters (NUL above all, which PostgreSQL text refuses) and lone
# surrogates have no place in names or notes; line breaks and tabs do.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _printable(field: str, value: str, max_length: int) -> str:
    if len(value) > max_length:
        raise InvalidValue(field, f"must be at most {max_length} characters")
    if _FORBIDDEN.search(value):
        raise InvalidValue(field, "must not contain control characters")
    return value


def required_text(field: str, value: str, max_length: int = NAME_MAX) -> str:
    """Strip surrounding blanks; refuse empty, overlong or unprintable text."""
    cleaned = value.strip()
    if not cleaned:
        raise InvalidValue(field, "must not be empty")
    return _printable(field, cleaned, max_length)


# Every kind of line break, not only CR and LF: the mail library folds headers with
# str.splitlines(), which also splits on these. The one definition: infra/mail.py
# checks outgoing headers with it too.
_LINE_BREAK = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def is_single_line(value: str) -> bool:
    """No line break of any kind str.splitlines() knows."""
    return _LINE_BREAK.search(value) is None


def single_line_text(field: str, value: str, max_length: int = NAME_MAX) -> str:
    """Required text that may end up in a mail header (a gym's name is a welcome
    mail's subject): a line break there would start a header of the sender's choosing."""
    cleaned = required_text(field, value, max_length)
    if not is_single_line(cleaned):
        raise InvalidValue(field, "must be a single line")
    return cleaned


def optional_text(field: str, value: str | None, max_length: int = TEXT_MAX) -> str | None:
    """Blank optional text is stored as absent rather than as an empty string."""
    if value is None or not value.strip():
        return None
    return _printable(field, value.strip(), max_length)


def email(field: str, value: str) -> str:
    """Emails compare case-insensitively, so they are stored lower-cased. The shape
    and length are checked on what was sent (trimmed), before lower-casing: a few
    letters lower-case to two characters ("İ"), which no schema could foresee."""
    cleaned = value.strip()
    if len(cleaned) > 254 or not _EMAIL.match(cleaned) or _FORBIDDEN.search(cleaned):
        raise InvalidValue(field, "is not a valid email address")
    return cleaned.lower()


def card_code(field: str, value: str) -> str:
    """What a card's barcode or chip reads, compared exactly: 1 to CARD_CODE_MAX
    visible ASCII characters. Not trimmed and not case-folded (a scanner sends the
    same bytes every time, and "a1" and "A1" may be two cards); no blanks, so a code
    read with a stray space or line break is refused rather than stored as another
    card; ASCII only, so no two spellings of one accented letter name two cards."""
    if not 1 <= len(value) <= CARD_CODE_MAX or not all("!" <= c <= "~" for c in value):
        raise InvalidValue(
            field, f"must be 1 to {CARD_CODE_MAX} visible ASCII characters, without blanks"
        )
    return value


def currency(value: str) -> str:
    """A code, in any letter case but exactly three ASCII letters: some other letters
    upper-case to ASCII ones (long s to S, dotless i to I), and a code is not free
    text to trim."""
    code = value.upper()
    if not value.isascii() or code not in ISO_4217:
        raise InvalidValue("currency", "must be an ISO 4217 currency code such as EUR or USD")
    return code


def monthly_fee_cents(value: int) -> int:
    if value < 0:
        raise InvalidValue("monthly_fee_cents", "must be greater than or equal to 0")
    if value > 10**12:
        raise InvalidValue("monthly_fee_cents", "is unreasonably large")
    return value


@cache
def _known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone_names() -> list[str]:
    """Every name `timezone` accepts, sorted."""
    return sorted(_known_timezones() | {"UTC"})


def timezone(value: str) -> str:
    """An IANA zone name such as Europe/Berlin, exactly as listed (not trimmed: it is
    a name picked from a list); memberships end at its midnight."""
    if value != "UTC" and value not in _known_timezones():
        raise InvalidValue("timezone", "must be an IANA time zone such as Europe/Berlin")
    return value


def local_date(at: datetime, zone: str) -> date:
    """The calendar date at instant `at` in time zone `zone`."""
    return at.astimezone(ZoneInfo(zone)).date()


# Days a membership may name: wide enough for any gym, narrow enough that a term, a
# freeze or a renewal never runs off the calendar (year 9999) or before year 1.
DAY_MIN = date(1900, 1, 1)
DAY_MAX = date(9000, 12, 31)


def calendar_day(field: str, day: date) -> date:
    if not DAY_MIN <= day <= DAY_MAX:
        raise InvalidValue(field, f"must be from {DAY_MIN} to {DAY_MAX}")
    return day


def local_day_bounds(day: date, zone: str) -> tuple[datetime, datetime] | None:
    """The instants [start, end) whose `local_date` in `zone` is `day`, in UTC: from
    the day's first moment to the next day's, each as long as the zone's clocks made
    it (23 or 25 hours across a daylight-saving change). A midnight the clocks skip
    starts the day at the first moment that exists (fold 0 takes the offset from
    before the change). None for a day too close to year 1 or 9999 to name in UTC."""
    try:
        start, end = (
            datetime.combine(d, time.min, tzinfo=ZoneInfo(zone)).astimezone(UTC)
            for d in (day, day + timedelta(days=1))
        )
    except OverflowError:
        return None
    return start, end


# zxcvbn keeps the user inputs of the call in a module-level dictionary, so two
# threads checking at once could each be checked against the other's inputs.
_zxcvbn_lock = threading.Lock()


def _core(value: str) -> str:
    """The password without the digits and symbols around it ("password" of
    "Password-123!"), which cracking rules append to every word they try."""
    found = _CORE.match(value)
    return found["core"] if found else value


def _score(value: str, user_inputs: Sequence[str]) -> int:
    with _zxcvbn_lock:
        return int(zxcvbn(value, user_inputs=list(user_inputs))["score"])


def password(value: str, field: str = "password", user_inputs: Sequence[str] = ()) -> str:
    """8 to 72 characters (bcrypt's limit, kept from the earlier service) and not
    guessable: not among the common passwords zxcvbn knows (30,000 from leaks, plus
    dictionary words and names) nor an easy variation of one (l33t, digits or symbols
    around it: "password-123"), nor of `user_inputs` (the gym's email and name).
    Both the whole password and its core must score PASSWORD_MIN_SCORE; a password of
    digits and symbols only is judged whole."""
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise InvalidValue(field, f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long")
    if "\x00" in value:  # no form or terminal can type it; C-string libraries cut there
        raise InvalidValue(field, "must not contain NUL")
    score = _score(value, user_inputs)
    core = _core(value)
    if core and core != value:
        score = min(score, _score(core, user_inputs))
    if score < PASSWORD_MIN_SCORE:
        raise InvalidValue(
            field, "is too common or too easy to guess; use a longer phrase of unrelated words"
        )
    return value


# The rules above as regular expressions, for the API's published schema: a client
# (or a fuzzer) that keeps to the pattern is never refused, and anything else is.
# tests/unit/test_validation_patterns.py checks each pattern against its function.
# Character classes are spelled out rather than written \s, \d or ".": those mean
# different things in Python's `re` and in ECMA-262, which JSON Schema patterns use.
#
# Python's whitespace (str.strip(), str.isspace()): ECMA's \s differs (it has U+FEFF
# and lacks U+001C-U+001F).
_BLANK = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# _FORBIDDEN but for lone surrogates, which are not text: JSON decoding refuses them
# before any rule runs, and many regex engines (Rust's among them) cannot name them.
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_BREAK = r"\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029"  # _LINE_BREAK
# An _ATOM is none of these (nor blank). Unescaped `"`: ECMA's unicode mode refuses \".
_SPECIAL = r'@()<>\[\]:;\\,"'
# The end of the value: Python's `$` also matches before a final line break, ECMA's
# does not; `$(?!\n)` is the very end in both.
_END = r"$(?!\n)"


def text_pattern(max_length: int, *, required: bool = True, single_line: bool = False) -> str:
    """What `required_text` (or `single_line_text`, or with `required=False`
    `optional_text`) accepts: surrounding blanks, then 1 to `max_length` characters
    that start and end with a non-blank and hold no control character."""
    breaks = _BREAK if single_line else ""
    inner = f"[^{_CONTROL}{breaks}]"
    edge = f"[^{_BLANK}{_CONTROL}{breaks}]"
    core = f"{edge}(?:{inner}{{0,{max_length - 2}}}{edge})?"
    if not required:  # blank optional text is stored as absent
        core = f"(?:{core})?"
    return f"^[{_BLANK}]*{core}[{_BLANK}]*{_END}"


def _email_pattern() -> str:
    atom = f"[^{_BLANK}{_CONTROL}{_SPECIAL}]"
    label_atom = f"[^{_BLANK}{_CONTROL}{_SPECIAL}.]"
    # The look-ahead measures the trimmed address: it holds no blank, so the run of
    # non-blanks after the leading ones is all of it.
    length = f"(?=[^{_BLANK}]{{1,254}}[{_BLANK}]*{_END})"
    return f"^[{_BLANK}]*{length}{atom}{{1,64}}@{atom}+\\.{label_atom}{{2,}}[{_BLANK}]*{_END}"


EMAIL_PATTERN = _email_pattern()
# Any letter case: "eur" is EUR.
CURRENCY_PATTERN = (
    "^(?:"
    + "|".join("".join(f"[{c}{c.lower()}]" for c in code) for code in sorted(ISO_4217))
    + ")"
    + _END
)
CARD_CODE_PATTERN = rf"^[!-~]{{1,{CARD_CODE_MAX}}}{_END}"
# And PASSWORD_MIN to PASSWORD_MAX long; strength is not a pattern.
PASSWORD_PATTERN = r"^[^\x00]*$(?!\n)"  # noqa: S105 - a pattern, not a password


def _literal(text: str) -> str:
    """`text` as a pattern: only ECMA's syntax characters are escaped (its unicode
    mode refuses an escaped "-", which re.escape writes)."""
    return re.sub(r"([.+*?()\[\]{}|^$\\/])", r"\\\1", text)


@cache
def timezone_pattern() -> str:
    """Exactly the names `timezone` accepts, grouped by area ("Europe/(?:Berlin|...)").
    A pattern rather than a list of ~600 names: fuzzers try every listed value."""
    areas: dict[str, list[str]] = {}
    for name in timezone_names():
        area, slash, place = name.partition("/")
        areas.setdefault(area if slash else "", []).append(place if slash else name)
    parts = [_literal(name) for name in areas.pop("", [])]
    parts += [
        f"{_literal(area)}\\/(?:{'|'.join(_literal(p) for p in places)})"
        for area, places in sorted(areas.items())
    ]
    return f"^(?:{'|'.join(parts)}){_END}"
