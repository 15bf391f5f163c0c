"""Expiry-driven deactivation with a moved clock, timezones, and the scheduler."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis
from litestar.testing import TestClient

from commands.application import GymLedger
from infra.clock import ManualClock
from tests.conftest import bearer, signup_body
from tests.integration.helpers import head_position, wait_projected
from tests.integration.moved_clock import owner_of
from workers.actors import Actors

API = "/api/v1"


def expiry_events(settings: Any, customer_id: str) -> int:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM gymledger_events"
            " WHERE originator_id = %s AND topic LIKE 'MembershipExpired.%%'",
            (customer_id,),
        ).fetchone()
    return int(row[0]) if row else 0


def run_expiry(ledger: GymLedger, settings: Any, clock: ManualClock) -> int:
    from workers.expiry import expire_due_memberships

    wait_projected(settings.database_url, head_position(settings.database_url))
    return expire_due_memberships(ledger, settings.database_url, clock)


def test_membership_lapses_with_the_clock_and_is_recorded_once(
    moved_client: TestClient[Any], clock: ManualClock, ledger: GymLedger, settings: Any
) -> None:
    owner = owner_of(moved_client)
    created = moved_client.post(
        f"{API}/customers",
        headers=owner,
        json={
            "first_name": "Mo",
            "last_name": "Ment",
            "email": "mo@x.org",
            "membership_end": "2030-01-15",
        },
    ).json()
    url = f"{API}/customers/{created['id']}"
    assert created["active"] is True
    clock.set(datetime(2030, 1, 15, 23, 59, tzinfo=UTC))
    assert moved_client.get(url, headers=owner).json()["active"] is True  # last day counts
    clock.set(datetime(2030, 1, 16, 0, 1, tzinfo=UTC))
    # Inactive at once, before any job ran.
    assert moved_client.get(url, headers=owner).json()["active"] is False
    inactive = moved_client.get(f"{API}/customers?active=false", headers=owner).json()
    assert [c["id"] for c in inactive] == [created["id"]]
    assert run_expiry(ledger, settings, clock) >= 1
    run_expiry(ledger, settings, clock)
    assert expiry_events(settings, created["id"]) == 1  # at most one per membership
    # Extending makes the customer active again.
    extended = moved_client.patch(url, headers=owner, json={"membership_end": "2030-03-01"})
    assert extended.json()["active"] is True
    # ...unless the owner switched them off.
    moved_client.patch(url, headers=owner, json={"active": False})
    moved_client.patch(url, headers=owner, json={"membership_end": "2030-06-01"})
    assert moved_client.get(url, headers=owner).json()["active"] is False
    # A new membership end that lapses is a new membership: recorded again.
    moved_client.patch(url, headers=owner, json={"membership_end": "2030-02-01", "active": True})
    clock.set(datetime(2030, 2, 2, 9, tzinfo=UTC))
    run_expiry(ledger, settings, clock)
    assert expiry_events(settings, created["id"]) == 2


def test_today_is_the_gym_s_today(
    moved_client: TestClient[Any], clock: ManualClock, ledger: GymLedger, settings: Any
) -> None:
    # 12:00 UTC on Jan 15 is already Jan 16 in Kiritimati (UTC+14).
    clock.set(datetime(2030, 1, 15, 12, tzinfo=UTC))
    body = {
        "first_name": "Tz",
        "last_name": "Test",
        "email": "tz@x.org",
        "membership_end": "2030-01-15",
    }
    early = owner_of(moved_client, "Pacific/Kiritimati")
    late = owner_of(moved_client, "UTC")
    in_kiritimati = moved_client.post(f"{API}/customers", headers=early, json=body).json()
    in_utc = moved_client.post(f"{API}/customers", headers=late, json=body).json()
    assert in_kiritimati["active"] is False
    assert in_utc["active"] is True
    run_expiry(ledger, settings, clock)
    assert expiry_events(settings, in_kiritimati["id"]) == 1
    assert expiry_events(settings, in_utc["id"]) == 0


def test_a_changed_timezone_applies_to_the_very_next_request(
    moved_client: TestClient[Any], clock: ManualClock
) -> None:
    """Each API process caches gyms' timezones; a change must still apply at once."""
    clock.set(datetime(2030, 1, 15, 12, tzinfo=UTC))  # already Jan 16 in Kiritimati
    owner = owner_of(moved_client, "UTC")
    body = {"first_name": "Tz", "last_name": "Move", "email": "tz@x.org"}
    created = moved_client.post(
        f"{API}/customers", headers=owner, json={**body, "membership_end": "2030-01-15"}
    ).json()
    url = f"{API}/customers/{created['id']}"
    assert moved_client.get(url, headers=owner).json()["active"] is True
    moved = moved_client.patch(
        f"{API}/gyms/me", headers=owner, json={"timezone": "Pacific/Kiritimati"}
    )
    assert moved.status_code == 200
    assert moved_client.get(url, headers=owner).json()["active"] is False


def test_invalid_timezone_is_refused(moved_client: TestClient[Any]) -> None:
    response = moved_client.post(
        f"{API}/auth/signup", json=signup_body(timezone="Mars/Olympus_Mons")
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "timezone"]


def test_only_one_scheduler_enqueues_per_interval(settings: Any, actors: Actors) -> None:
    from workers.expiry import lock_key, try_schedule

    key, job = lock_key(settings.queue_namespace), actors.expire_memberships
    client = redis.Redis.from_url(settings.redis_url)
    client.delete(key)
    with ThreadPoolExecutor(10) as pool:
        won = list(pool.map(lambda _: try_schedule(client, key, 30.0, job), range(10)))
    assert won.count(True) == 1
    assert try_schedule(client, key, 30.0, job) is False
    client.delete(key)


def test_scheduled_job_records_real_lapsed_memberships(
    client: TestClient[Any], settings: Any
) -> None:
    """Through dramatiq on Redis with the system clock: within one interval (1 s here)."""
    body = signup_body()
    client.post(f"{API}/auth/signup", json=body)
    token = client.post(
        f"{API}/auth/login", data={"username": body["email"], "password": body["password"]}
    ).json()["access_token"]
    created = client.post(
        f"{API}/customers",
        headers=bearer(token),
        json={
            "first_name": "Old",
            "last_name": "Member",
            "email": "old@x.org",
            "membership_end": "2020-01-01",
        },
    ).json()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and expiry_events(settings, created["id"]) == 0:
        time.sleep(0.2)
    assert expiry_events(settings, created["id"]) == 1
