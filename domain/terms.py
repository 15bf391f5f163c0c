"""Calendar arithmetic of membership terms: pure functions on dates.

A term is a number of months or of days. Its last day is the day before the same
point one term later, so a month from 2026-01-15 ends on 2026-02-14 and 30 days from
2026-01-01 end on 2026-01-30. Where the next month is shorter, the day clamps to its
end first: a month from 2026-01-31 reaches 2026-02-28 and so ends on 2026-02-27.
"""

import calendar
from datetime import date, timedelta
from typing import Annotated

import msgspec

from domain.errors import InvalidValue, MembershipRuleBroken

TERM_MAX_MONTHS = 120
TERM_MAX_DAYS = 3660

Months = Annotated[int, msgspec.Meta(ge=1, le=TERM_MAX_MONTHS)]
Days = Annotated[int, msgspec.Meta(ge=1, le=TERM_MAX_DAYS)]


class Term(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """`{"months": n}` or `{"days": n}`: exactly one of the two."""

    months: Months | None = None
    days: Days | None = None


# A term as requests carry it, documented as exactly what checked_term accepts (the
# struct alone would publish {} and {"months": null} as valid): one of the two set.
RequestedTerm = Annotated[
    Term,
    msgspec.Meta(
        extra_json_schema={
            "oneOf": [
                {"required": [name], "properties": {name: {"type": "integer"}}}
                for name in ("months", "days")
            ]
        }
    ),
]


def checked_term(term: Term) -> Term:
    if (term.months is None) == (term.days is None):
        raise InvalidValue("term", 'must be either {"months": n} or {"days": n}')
    return term


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` later, clamped to that month's last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def term_end(starts_on: date, term: Term) -> date:
    """The last day of one term that starts on `starts_on`."""
    try:
        if term.months is not None:
            return add_months(starts_on, term.months) - timedelta(days=1)
        if term.days is not None:
            return starts_on + timedelta(days=term.days - 1)
    except (OverflowError, ValueError):  # renewed until past year 9999
        raise MembershipRuleBroken("The term would end after the last day of 9999") from None
    raise InvalidValue("term", 'must be either {"months": n} or {"days": n}')


def days_between(first: date, last: date) -> int:
    """Days from `first` to `last`, both included (0 when `last` is before `first`)."""
    return max(0, (last - first).days + 1)
