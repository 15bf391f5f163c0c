"""A front desk's day over HTTP, on a clock the test moves: sell, check in, freeze, a
denied check-in, unfreeze, renew, cancel, and the day's lists and reports (issue 15)."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from litestar.testing import TestClient

from infra.clock import ManualClock
from projections.export import export_gym, verify_export
from tests.conftest import signup_and_login
from tests.integration.helpers import head_position, wait_projected
from tests.integration.moved_clock import owner_of
from tests.integration.test_audit_api import auditor_for

API = "/api/v1"
DAY = "2030-05-04"
# 08:00 in New York (EDT, UTC-4) on DAY.
MORNING = datetime(2030, 5, 4, 12, tzinfo=UTC)


def post(client: TestClient[Any], owner: dict[str, str], path: str, body: Any = None) -> Any:
    response = client.post(f"{API}{path}", headers=owner, json=body)
    assert response.status_code in (200, 201), (path, response.text)
    return response.json()


class Desk:
    """Scans a card a minute after the last scan (the day's list is by time)."""

    def __init__(self, client: TestClient[Any], owner: dict[str, str], clock: ManualClock) -> None:
        self.client, self.owner, self.clock = client, owner, clock

    def scan(self, card: str) -> tuple[bool, str | None]:
        self.clock.set(self.clock.now() + timedelta(minutes=1))
        checked = post(self.client, self.owner, "/check-ins", {"card_code": card})
        return checked["allowed"], checked["reason"]


def test_a_front_desk_day(moved_client: TestClient[Any], clock: ManualClock) -> None:
    clock.set(MORNING)
    owner = owner_of(moved_client, "America/New_York")
    plan = post(
        moved_client,
        owner,
        "/plans",
        {"name": "Monthly", "price_cents": 4900, "currency": "USD", "term": {"months": 1},
         "max_freeze_days": 14},
    )  # fmt: skip
    ana = post(
        moved_client,
        owner,
        "/customers",
        {"first_name": "Ana", "last_name": "Desk", "email": "ana@example.org", "card_code": "A-1"},
    )
    desk = Desk(moved_client, owner, clock)
    assert desk.scan("A-1") == (False, "no_membership")

    sale = {"plan_id": plan["id"], "starts_on": DAY}
    sold = post(moved_client, owner, f"/customers/{ana['id']}/memberships", sale)
    assert (sold["status"], sold["ends_on"]) == ("active", "2030-06-03")
    assert desk.scan("A-1") == (True, None)

    membership = f"/memberships/{sold['id']}"
    frozen = post(
        moved_client, owner, f"{membership}/freeze", {"starts_on": DAY, "ends_on": "2030-05-10"}
    )
    assert (frozen["status"], frozen["ends_on"]) == ("frozen", "2030-06-10")
    assert desk.scan("A-1") == (False, "frozen")

    thawed = post(moved_client, owner, f"{membership}/unfreeze", {"on": DAY})
    assert (thawed["status"], thawed["ends_on"], thawed["freezes"]) == ("active", "2030-06-03", [])
    assert desk.scan("A-1") == (True, None)

    renewed = post(moved_client, owner, f"{membership}/renew")
    assert renewed["ends_on"] == "2030-07-03"
    cancelled = post(moved_client, owner, f"{membership}/cancel", {"effective_on": "2030-05-05"})
    assert (cancelled["status"], cancelled["cancelled_on"]) == ("active", "2030-05-05")
    assert desk.scan("A-1") == (True, None)  # access ends tomorrow

    # The day's lists and reports, seen from the desk in the gym's time zone.
    day = moved_client.get(f"{API}/check-ins", headers=owner, params={"on": DAY})
    assert day.headers["x-total-count"] == "5"
    assert [c["allowed"] for c in day.json()] == [True, True, False, True, False]  # newest first
    customer = moved_client.get(f"{API}/customers/{ana['id']}", headers=owner).json()
    assert (customer["active"], customer["check_ins_last_30_days"]) == (True, 3)
    report = moved_client.get(f"{API}/reports/memberships", headers=owner, params={"on": DAY})
    assert report.json() | {"as_of": None} == {
        "on": DAY,
        "active": 1,
        "frozen": 0,
        "expired": 0,
        "cancelled": 0,
        "upcoming": 0,
        "customers_with_access": 1,
        "as_of": None,
    }
    movements = moved_client.get(
        f"{API}/reports/movements", headers=owner, params={"from": DAY, "to": DAY}
    ).json()
    assert movements == {
        "from": DAY,
        "to": DAY,
        "sold": 1,
        "renewed": 1,
        "frozen": 1,
        "cancelled": 1,
        "expired": 0,
        "check_ins_allowed": 3,
        "check_ins_denied": 2,
    }

    # The next morning the cancellation holds at the desk and in the report.
    clock.set(MORNING + timedelta(days=1))
    assert desk.scan("A-1") == (False, "cancelled")
    tomorrow = moved_client.get(
        f"{API}/reports/memberships", headers=owner, params={"on": "2030-05-05"}
    ).json()
    assert (tomorrow["active"], tomorrow["cancelled"], tomorrow["customers_with_access"]) == (
        0,
        1,
        0,
    )
    auditor = auditor_for(moved_client, owner)
    assert moved_client.get(f"{API}/reports/memberships", headers=auditor).status_code == 200
    refused = moved_client.post(f"{API}/check-ins", headers=auditor, json={"card_code": "A-1"})
    assert refused.status_code == 403


def test_a_report_as_of_a_moment_leaves_out_what_was_recorded_later(
    moved_client: TestClient[Any], clock: ManualClock
) -> None:
    clock.set(MORNING)
    owner = owner_of(moved_client)
    plan = post(
        moved_client, owner, "/plans",
        {"name": "Ten days", "price_cents": 900, "currency": "EUR", "term": {"days": 10}},
    )  # fmt: skip
    first = post(
        moved_client,
        owner,
        "/customers",
        {"first_name": "Early", "last_name": "B", "email": "e@x.org"},
    )
    post(
        moved_client,
        owner,
        f"/customers/{first['id']}/memberships",
        {"plan_id": plan["id"], "starts_on": DAY},
    )
    printed = clock.now()
    clock.set(MORNING + timedelta(hours=2))
    late = post(
        moved_client,
        owner,
        "/customers",
        {"first_name": "Late", "last_name": "B", "email": "l@x.org"},
    )
    # Sold after `printed`, though it starts days before DAY.
    post(
        moved_client,
        owner,
        f"/customers/{late['id']}/memberships",
        {"plan_id": plan["id"], "starts_on": "2030-05-01"},
    )

    def report(**params: str) -> dict[str, Any]:
        got = moved_client.get(
            f"{API}/reports/memberships", headers=owner, params={"on": DAY, **params}
        )
        assert got.status_code == 200, got.text
        return dict(got.json())

    assert (report()["active"], report()["customers_with_access"]) == (2, 2)
    then = report(as_of=printed.isoformat())
    assert (then["active"], then["customers_with_access"]) == (1, 1)
    assert report(as_of=(MORNING - timedelta(seconds=1)).isoformat())["active"] == 0
    # Any other day, past or future, from the same events.
    assert report(on="2030-05-11")["expired"] == 1  # the late one ended on May 10
    assert report(on="2030-04-30")["upcoming"] == 2


def test_the_new_streams_enter_the_feed_the_chain_and_the_signed_export(
    client: TestClient[Any], settings: Any
) -> None:
    gym, token = signup_and_login(client)
    owner = {"Authorization": f"Bearer {token}"}
    plan = post(
        client,
        owner,
        "/plans",
        {"name": "Y", "price_cents": 1, "currency": "EUR", "term": {"days": 9}},
    )
    who = post(
        client, owner, "/customers", {"first_name": "C", "last_name": "D", "email": "c@x.org"}
    )
    sold = post(
        client,
        owner,
        f"/customers/{who['id']}/memberships",
        {"plan_id": plan["id"], "starts_on": "2099-01-01"},
    )
    post(client, owner, f"/memberships/{sold['id']}/cancel", {"effective_on": "2099-01-05"})
    post(client, owner, "/check-ins", {"customer_id": who["id"]})
    new_types = {"PlanCreated", "MembershipSold", "MembershipCancelled", "CheckInRecorded"}
    feed = client.get(f"{API}/events", headers=owner, params={"limit": 1000}).json()
    assert new_types <= {e["type"] for e in feed}
    assert all(
        e["actor"] == gym["id"] and e["correlation_id"] for e in feed if e["type"] in new_types
    )
    wait_projected(settings.database_url, head_position(settings.database_url))
    verified = client.get(f"{API}/audit/verify", headers=owner).json()
    assert (verified["ok"], verified["events_checked"]) == (True, len(feed))
    with psycopg.connect(settings.database_url) as conn:
        lines = list(export_gym(conn, UUID(gym["id"])))
    exported = {msgspec.json.decode(line).get("type") for line in lines}
    assert new_types <= exported
    assert verify_export(lines, settings.key_ring()).ok
