"""The scheduler's membership passes with a moved clock: a term's expiry on the
gym-local day after its last, once; reminders `reminder_days` before, once, through
the outbox; across time zones and a daylight-saving change."""

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from commands.application import GymLedger
from infra.clock import ManualClock
from projections.rebuild import blue_green_rebuild
from tests.integration.helpers import head_position, wait_projected
from tests.integration.moved_clock import owner_of
from workers.membership_jobs import run_membership_passes

API = "/api/v1"


def notes(settings: Any, membership_id: str, event_type: str) -> int:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM gymledger_events WHERE originator_id = %s AND topic LIKE %s",
            (membership_id, f"{event_type}.%"),
        ).fetchone()
    return int(row[0]) if row else 0


class Jobs:
    """Runs the passes at the test's clock and says what they recorded for one
    membership: (terms expired, reminders queued), counted in the log. The passes work
    on every gym in the database, other tests' too, so only per-membership counts
    are the test's own."""

    def __init__(self, ledger: GymLedger, settings: Any, clock: ManualClock) -> None:
        self.ledger, self.settings, self.clock = ledger, settings, clock

    def run_at(self, when: datetime, membership: dict[str, Any]) -> tuple[int, int]:
        url = self.settings.database_url
        self.clock.set(when)
        wait_projected(url, head_position(url))
        run_membership_passes(self.ledger, url, self.clock)
        wait_projected(url, head_position(url))
        return (
            notes(self.settings, membership["id"], "MembershipTermExpired"),
            notes(self.settings, membership["id"], "MembershipReminderQueued"),
        )


@pytest.fixture
def jobs(ledger: GymLedger, settings: Any, clock: ManualClock) -> Jobs:
    return Jobs(ledger, settings, clock)


def sell(
    client: TestClient[Any],
    owner: dict[str, str],
    starts_on: str,
    term: dict[str, int] | None = None,
    max_freeze_days: int = 0,
) -> dict[str, Any]:
    plan = client.post(
        f"{API}/plans",
        headers=owner,
        json={
            "name": "Monthly",
            "price_cents": 3900,
            "currency": "EUR",
            "term": term or {"months": 1},
            "max_freeze_days": max_freeze_days,
        },
    )
    assert plan.status_code == 201, plan.text
    customer = client.post(
        f"{API}/customers",
        headers=owner,
        json={"first_name": "Rita", "last_name": "Minder", "email": "rita@example.org"},
    )
    assert customer.status_code == 201, customer.text
    sold = client.post(
        f"{API}/customers/{customer.json()['id']}/memberships",
        headers=owner,
        json={"plan_id": plan.json()["id"], "starts_on": starts_on},
    )
    assert sold.status_code == 201, sold.text
    return dict(sold.json())


def test_a_term_expires_once_on_the_gym_local_day_after_its_last(
    moved_client: TestClient[Any], clock: ManualClock, jobs: Jobs
) -> None:
    # Auckland is UTC+13 in January: its Jan 16 starts at 11:00 UTC on Jan 15.
    clock.set(datetime(2030, 1, 1, 12, tzinfo=UTC))
    owner = owner_of(moved_client, "Pacific/Auckland")
    m = sell(moved_client, owner, "2029-12-16")
    assert m["ends_on"] == "2030-01-15"
    assert jobs.run_at(datetime(2030, 1, 15, 10, 59, tzinfo=UTC), m)[0] == 0  # 23:59 there
    assert jobs.run_at(datetime(2030, 1, 15, 11, 0, tzinfo=UTC), m)[0] == 1  # Jan 16 there
    assert jobs.run_at(datetime(2030, 1, 20, 11, 0, tzinfo=UTC), m)[0] == 1  # once
    shown = moved_client.get(f"{API}/memberships/{m['id']}", headers=owner).json()
    assert shown["status"] == "expired"


def test_no_expiry_while_frozen_nor_after_a_renewal_until_the_new_term_ends(
    moved_client: TestClient[Any], clock: ManualClock, jobs: Jobs
) -> None:
    clock.set(datetime(2030, 1, 5, 12, tzinfo=UTC))
    owner = owner_of(moved_client)
    frozen = sell(moved_client, owner, "2030-01-01", max_freeze_days=10)  # ends Jan 31
    moved = moved_client.post(
        f"{API}/memberships/{frozen['id']}/freeze",
        headers=owner,
        json={"starts_on": "2030-01-25", "ends_on": "2030-02-03"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["ends_on"] == "2030-02-10"
    renewed = sell(moved_client, owner, "2030-01-01")
    again = moved_client.post(f"{API}/memberships/{renewed['id']}/renew", headers=owner)
    assert again.json()["ends_on"] == "2030-02-28"
    after_first_term = datetime(2030, 2, 1, 12, tzinfo=UTC)
    assert jobs.run_at(after_first_term, frozen)[0] == 0  # frozen: the end moved
    assert jobs.run_at(after_first_term, renewed)[0] == 0
    assert jobs.run_at(datetime(2030, 2, 11, 12, tzinfo=UTC), frozen)[0] == 1
    assert jobs.run_at(datetime(2030, 3, 1, 12, tzinfo=UTC), renewed)[0] == 1  # term 2 only


def test_a_cancelled_membership_neither_expires_nor_gets_a_reminder(
    moved_client: TestClient[Any], clock: ManualClock, jobs: Jobs
) -> None:
    clock.set(datetime(2030, 1, 5, 12, tzinfo=UTC))
    owner = owner_of(moved_client)
    m = sell(moved_client, owner, "2030-01-01")
    cancelled = moved_client.post(
        f"{API}/memberships/{m['id']}/cancel", headers=owner, json={"effective_on": "2030-01-20"}
    )
    assert cancelled.status_code == 200, cancelled.text
    for when in (datetime(2030, 1, 27, 12), datetime(2030, 1, 31, 12), datetime(2030, 2, 2, 12)):
        assert jobs.run_at(when.replace(tzinfo=UTC), m) == (0, 0)


def reminder_mails(client: TestClient[Any], owner: dict[str, str]) -> list[dict[str, Any]]:
    mails = client.get(f"{API}/mails", headers=owner).json()
    return [mail for mail in mails if "ends on" in mail["subject"]]


def test_one_reminder_per_term_reminder_days_before_its_end_through_the_outbox(
    moved_client: TestClient[Any], clock: ManualClock, jobs: Jobs
) -> None:
    clock.set(datetime(2030, 1, 5, 12, tzinfo=UTC))
    owner = owner_of(moved_client)
    m = sell(moved_client, owner, "2030-01-01")  # ends Jan 31; default reminder_days 7
    assert jobs.run_at(datetime(2030, 1, 23, 12, tzinfo=UTC), m)[1] == 0  # 8 days before
    assert jobs.run_at(datetime(2030, 1, 24, 12, tzinfo=UTC), m)[1] == 1  # 7 days before
    assert jobs.run_at(datetime(2030, 1, 25, 12, tzinfo=UTC), m)[1] == 1  # once
    [mail] = reminder_mails(moved_client, owner)
    assert mail["recipient"] == "rita@example.org"
    assert "2030-01-31" in mail["subject"]
    blue_green_rebuild(jobs.settings.database_url)  # replays MembershipReminderQueued
    wait_projected(jobs.settings.database_url, head_position(jobs.settings.database_url))
    assert [m["id"] for m in reminder_mails(moved_client, owner)] == [mail["id"]]  # once
    # The renewed term gets its own reminder, once.
    moved_client.post(f"{API}/memberships/{m['id']}/renew", headers=owner)
    assert jobs.run_at(datetime(2030, 2, 21, 12, tzinfo=UTC), m)[1] == 2  # 7 days before Feb 28
    assert jobs.run_at(datetime(2030, 2, 22, 12, tzinfo=UTC), m)[1] == 2
    assert len(reminder_mails(moved_client, owner)) == 2


def test_a_renewal_before_the_reminder_day_means_no_reminder_and_zero_days_none_at_all(
    moved_client: TestClient[Any], clock: ManualClock, jobs: Jobs
) -> None:
    clock.set(datetime(2030, 1, 5, 12, tzinfo=UTC))
    owner = owner_of(moved_client)
    m = sell(moved_client, owner, "2030-01-01")
    moved_client.post(f"{API}/memberships/{m['id']}/renew", headers=owner)  # ends Feb 28
    assert jobs.run_at(datetime(2030, 1, 25, 12, tzinfo=UTC), m)[1] == 0
    off = moved_client.patch(f"{API}/gyms/me", headers=owner, json={"reminder_days": 0})
    assert off.status_code == 200
    assert jobs.run_at(datetime(2030, 2, 25, 12, tzinfo=UTC), m)[1] == 0
    assert reminder_mails(moved_client, owner) == []


def test_expiry_follows_local_midnight_across_a_daylight_saving_change(
    moved_client: TestClient[Any], clock: ManualClock, jobs: Jobs
) -> None:
    # Berlin moves to summer time on 2030-03-31 (CET +1 to CEST +2): that day starts at
    # 23:00 UTC on the 30th. A 30-day term from Mar 1 ends on the 30th.
    clock.set(datetime(2030, 3, 1, 12, tzinfo=UTC))
    owner = owner_of(moved_client, "Europe/Berlin")
    m = sell(moved_client, owner, "2030-03-01", term={"days": 30})
    assert m["ends_on"] == "2030-03-30"
    assert jobs.run_at(datetime(2030, 3, 30, 22, 59, tzinfo=UTC), m)[0] == 0  # 23:59 CET
    assert jobs.run_at(datetime(2030, 3, 30, 23, 0, tzinfo=UTC), m)[0] == 1  # 00:00 on the 31st
