"""The front desk's decision: who may come in, and why not."""

from datetime import date

import pytest

from domain.check_in import Reason, dated_status, decide
from domain.membership import Status

TODAY = date(2026, 6, 15)


def test_an_active_membership_lets_the_customer_in_whatever_else_they_hold() -> None:
    assert decide(True, [Status.EXPIRED, Status.ACTIVE, Status.CANCELLED]) == (True, None)


def test_the_owners_switch_wins_over_any_membership() -> None:
    assert decide(False, [Status.ACTIVE]) == (False, Reason.INACTIVE)
    assert decide(False, []) == (False, Reason.INACTIVE)


def test_without_memberships_the_reason_is_no_membership() -> None:
    assert decide(True, []) == (False, Reason.NO_MEMBERSHIP)


@pytest.mark.parametrize(
    ("held", "reason"),
    [
        ([Status.FROZEN], Reason.FROZEN),
        ([Status.EXPIRED], Reason.EXPIRED),
        ([Status.CANCELLED], Reason.CANCELLED),
        ([Status.UPCOMING], Reason.UPCOMING),
        # The reason names the membership closest to giving access.
        ([Status.CANCELLED, Status.EXPIRED, Status.FROZEN], Reason.FROZEN),
        ([Status.CANCELLED, Status.UPCOMING, Status.EXPIRED], Reason.UPCOMING),
        ([Status.CANCELLED, Status.EXPIRED], Reason.EXPIRED),
    ],
)
def test_a_denial_names_the_membership_closest_to_access(
    held: list[Status], reason: Reason
) -> None:
    assert decide(True, held) == (False, reason)


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        (None, None, None),
        (date(2026, 6, 16), None, Status.UPCOMING),
        (None, date(2026, 6, 14), Status.EXPIRED),
        (date(2026, 1, 1), date(2026, 6, 15), Status.ACTIVE),  # the last day gives access
        (date(2026, 6, 15), None, Status.ACTIVE),
    ],
)
def test_the_earlier_contracts_dates_read_as_a_membership(
    start: date | None, end: date | None, status: Status | None
) -> None:
    assert dated_status(start, end, TODAY) == status
