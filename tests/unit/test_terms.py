"""Term arithmetic: the issue's examples, and the rules they follow for every date."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValue
from domain.terms import Term, add_months, checked_term, days_between, term_end


@pytest.mark.parametrize(
    ("starts_on", "term", "ends_on"),
    [
        (date(2026, 1, 15), Term(months=1), date(2026, 2, 14)),
        (date(2026, 1, 1), Term(days=30), date(2026, 1, 30)),
        (date(2026, 1, 31), Term(months=1), date(2026, 2, 27)),  # clamps to Feb 28 first
        (date(2026, 3, 1), Term(months=1), date(2026, 3, 31)),
        (date(2026, 4, 1), Term(months=1), date(2026, 4, 30)),  # the renewal of the above
        (date(2027, 12, 15), Term(months=3), date(2028, 3, 14)),  # across a year end
        (date(2028, 1, 31), Term(months=1), date(2028, 2, 28)),  # a leap year's Feb 29
        (date(2026, 1, 1), Term(days=1), date(2026, 1, 1)),
        (date(2026, 5, 10), Term(months=12), date(2027, 5, 9)),
    ],
)
def test_term_ends_on_the_day_before_the_same_point_one_term_later(
    starts_on: date, term: Term, ends_on: date
) -> None:
    assert term_end(starts_on, term) == ends_on


@pytest.mark.parametrize("term", [Term(), Term(months=1, days=1)])
def test_a_term_is_months_or_days_never_both_nor_neither(term: Term) -> None:
    with pytest.raises(InvalidValue):
        checked_term(term)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2900, 12, 31)), st.integers(1, 120))
def test_a_month_term_never_ends_before_it_starts_and_spans_about_that_many_months(
    starts_on: date, months: int
) -> None:
    ends_on = term_end(starts_on, Term(months=months))
    assert starts_on <= ends_on
    assert 28 * months - 3 <= (ends_on - starts_on).days + 1 <= 31 * months
    assert add_months(starts_on, months).day <= starts_on.day


@given(st.dates(max_value=date(9000, 1, 1)), st.integers(1, 3660))
def test_a_day_term_holds_exactly_that_many_days(starts_on: date, days: int) -> None:
    assert days_between(starts_on, term_end(starts_on, Term(days=days))) == days


def test_days_between_counts_both_ends_and_never_goes_negative() -> None:
    day = date(2026, 3, 1)
    assert days_between(day, day) == 1
    assert days_between(day, day + timedelta(days=6)) == 7
    assert days_between(day, day - timedelta(days=1)) == 0
