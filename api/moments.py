"""Query parameters that name a moment or a day: `as_of` (RFC 3339, strictly) and
the 422 every malformed query parameter gets."""

import re
from datetime import UTC, datetime, timedelta, timezone

from litestar.params import QueryParameter

from domain.errors import InvalidValue

# `as_of` is turned into a calendar date in the gym's time zone: keep it a day inside
# the years datetime can hold (1 to 9999), so that never overflows in any zone. Moments
# outside name the same state as these (nothing is older, everything is earlier).
AS_OF_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
AS_OF_LATEST = datetime(9999, 12, 30, tzinfo=UTC)
# RFC 3339 (JSON Schema's "date-time"), and nothing else: Python's own parsers also
# take dates alone, naive times and numbers, which the schema does not allow.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
AS_OF = QueryParameter(
    description="RFC 3339 time with offset: as it was then.",
    schema_extra={"format": "date-time"},
)


def query_error(name: str, message: str) -> InvalidValue:
    """A 422 in the documented shape: detail [{loc: ["query", name], msg, type}]."""
    return InvalidValue(name, message, "query")


def _rfc3339(text: str) -> datetime:
    found = _RFC3339.fullmatch(text)
    if found is None:
        raise query_error("as_of", "must be an RFC 3339 time with offset")
    year, month, day, hour, minute, second = (int(g) for g in found.groups()[:6])
    fraction, sign, offset_hours, offset_minutes = found.groups()[6:]
    offset = timedelta(hours=int(offset_hours or 0), minutes=int(offset_minutes or 0))
    try:
        zone = timezone(-offset if sign == "-" else offset)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        if second == 60:  # a leap second: the last moment of its minute
            second, micro = 59, 999_999
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except (ValueError, OverflowError):  # no such day or time, or an offset of a day
        raise query_error("as_of", "must be an RFC 3339 time with offset") from None


def as_of_in_utc(as_of: str) -> datetime:
    moment = _rfc3339(as_of)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # an offset pushes it past year 1 or 9999
        return AS_OF_EARLIEST if moment.year == 1 else AS_OF_LATEST
    return min(max(moment, AS_OF_EARLIEST), AS_OF_LATEST)


# `version=<n>`: the stream as its n-th event left it (past the latest: the latest).
VERSION = QueryParameter(ge=1, le=2**31)
