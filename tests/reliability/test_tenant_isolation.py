"""Tenant isolation on every id: only the caller's own streams of the kind an endpoint
serves are readable or writable there; everything else is the documented 404, and
no response to one gym carries another gym's id or data.

Stream ids are not secrets: email claims and idempotency keys are uuid5 of things a
caller knows (domain/email_claim.py, domain/idempotency.py) and show up in the
caller's own feed, so every id-taking endpoint is walked with every kind of stream.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from domain import customer, gym
from domain.email_claim import claim_id
from domain.idempotency import stream_id
from tests.conftest import bearer, signup_body, unique_email
from tests.integration.helpers import head_position

API = "/api/v1"
NOT_FOUND = {"detail": "Customer not found", "status_code": 404}
CUSTOMER_TYPES = {cls.__name__ for cls in customer.EVENTS}
GYM_TYPES = {cls.__name__ for cls in gym.EVENTS}


@dataclass(frozen=True)
class Tenants:
    """Gym A changed its email; gym B signed up later with A's first email."""

    a_id: str
    a: dict[str, str]
    a_auditor: dict[str, str]
    a_customer: str
    a_first_email: str
    a_email: str
    a_customer_key: str
    a_signup_key: str
    b_id: str
    b: dict[str, str]
    b_customer: str


def _signup(client: TestClient[Any], email: str, key: str) -> tuple[str, dict[str, str]]:
    body = signup_body(email=email)
    created = client.post(f"{API}/auth/signup", json=body, headers={"Idempotency-Key": key})
    assert created.status_code == 201, created.text
    login = client.post(f"{API}/auth/login", data={"username": email, "password": body["password"]})
    assert login.status_code == 200, login.text
    return str(created.json()["id"]), bearer(login.json()["access_token"])


def _customer(client: TestClient[Any], owner: dict[str, str], key: str | None = None) -> str:
    headers = {**owner, **({"Idempotency-Key": key} if key else {})}
    body = {"first_name": "Ada", "last_name": "Lovelace", "email": unique_email("member")}
    created = client.post(f"{API}/customers", headers=headers, json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.fixture
def tenants(client: TestClient[Any]) -> Tenants:
    first_email, later_email = unique_email("first"), unique_email("later")
    signup_key, customer_key = f"signup-{uuid.uuid4().hex}", f"create-{uuid.uuid4().hex}"
    a_id, a = _signup(client, first_email, signup_key)
    moved = client.patch(f"{API}/gyms/me", headers=a, json={"email": later_email})
    assert moved.status_code == 200, moved.text
    a_customer = _customer(client, a, customer_key)
    token = client.post(f"{API}/auth/auditor-tokens", headers=a, json={"expires_in_seconds": 600})
    assert token.status_code == 201, token.text
    b_id, b = _signup(client, first_email, f"signup-{uuid.uuid4().hex}")
    return Tenants(
        a_id=a_id,
        a=a,
        a_auditor=bearer(token.json()["access_token"]),
        a_customer=a_customer,
        a_first_email=first_email,
        a_email=later_email,
        a_customer_key=customer_key,
        a_signup_key=signup_key,
        b_id=b_id,
        b=b,
        b_customer=_customer(client, b),
    )


def foreign_ids(t: Tenants) -> dict[str, str]:
    """Every kind of id gym A may try that is not one of its customers."""
    return {
        "own gym": t.a_id,
        "other gym": t.b_id,
        "other gym's customer": t.b_customer,
        "email claim now held by the other gym": str(claim_id(t.a_first_email)),
        "own email claim": str(claim_id(t.a_email)),
        "own customer idempotency key": str(stream_id(t.a_id, t.a_customer_key)),
        "own signup idempotency key": str(stream_id("signup", t.a_signup_key)),
        "random": str(uuid.uuid4()),
    }


READS: list[tuple[str, dict[str, Any]]] = [
    ("", {}),
    ("", {"version": 1}),
    ("", {"version": 2}),
    ("", {"version": 999}),
    ("", {"as_of": "2100-01-01T00:00:00+00:00"}),
    ("", {"as_of": "2000-01-01T00:00:00+00:00"}),
    ("", {"as_of": "9999-12-30T00:00:00+00:00"}),
    ("/history", {}),
]


def test_an_email_claim_stream_is_not_a_customer(client: TestClient[Any], tenants: Tenants) -> None:
    """The reported hole: A's feed names its released claim, which B holds now."""
    feed = client.get(f"{API}/events", headers=tenants.a, params={"limit": 1000}).json()
    claim = str(claim_id(tenants.a_first_email))
    assert claim in {e["stream_id"] for e in feed if e["type"] == "EmailReleased"}
    for headers in (tenants.a, tenants.a_auditor, tenants.b):
        response = client.get(f"{API}/customers/{claim}/history", headers=headers)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), response.text[:300]
        assert tenants.b_id not in response.text or headers is tenants.b


@pytest.mark.parametrize("caller", ["owner", "auditor"])
def test_every_read_by_id_is_404_unless_it_is_the_callers_customer(
    client: TestClient[Any], tenants: Tenants, caller: str
) -> None:
    headers = tenants.a if caller == "owner" else tenants.a_auditor
    failures = []
    for kind, stream in foreign_ids(tenants).items():
        for suffix, params in READS:
            if caller == "auditor" and suffix == "" and not params:
                continue  # auditors may not read the live record at all (403)
            response = client.get(
                f"{API}/customers/{stream}{suffix}", headers=headers, params=params
            )
            leaks = tenants.b_id in response.text
            if (response.status_code, response.json()) != (404, NOT_FOUND) or leaks:
                failures.append((kind, suffix, params, response.status_code, response.text[:160]))
    assert not failures, "\n".join(map(str, failures))


def test_every_write_by_id_is_404_and_stores_nothing(
    client: TestClient[Any], tenants: Tenants, settings: Any
) -> None:
    before = head_position(settings.database_url)
    failures = []
    for kind, stream in foreign_ids(tenants).items():
        url = f"{API}/customers/{stream}"
        for if_match in (None, '"1"', "*"):
            headers = {**tenants.a, **({"If-Match": if_match} if if_match else {})}
            for response in (
                client.patch(url, headers=headers, json={"notes": "mine now"}),
                client.patch(url, headers=headers, json={"first_name": "Mallory", "active": False}),
                client.delete(url, headers=headers),
            ):
                if (response.status_code, response.json()) != (404, NOT_FOUND):
                    failures.append((kind, if_match, response.status_code, response.text[:160]))
    assert not failures, "\n".join(map(str, failures))
    assert head_position(settings.database_url) == before, "a refused write stored an event"


def test_the_callers_own_customer_still_reads_and_travels(
    client: TestClient[Any], tenants: Tenants
) -> None:
    url = f"{API}/customers/{tenants.a_customer}"
    assert client.get(url, headers=tenants.a).status_code == 200
    history = client.get(f"{url}/history", headers=tenants.a_auditor)
    assert history.status_code == 200
    assert [e["type"] for e in history.json()] == ["CustomerRegistered"]
    for params in ({"version": 1}, {"version": 999}, {"as_of": datetime.now(UTC).isoformat()}):
        response = client.get(url, headers=tenants.a_auditor, params=params)
        assert response.status_code == 200, (params, response.text)
        assert response.headers["etag"] == '"1"'  # the latest version there is
    # The other gym sees none of it.
    for path in (url, f"{url}/history"):
        assert client.get(path, headers=tenants.b).json() == NOT_FOUND
        assert client.get(path, headers=tenants.b, params={"version": 1}).json() == NOT_FOUND


def test_feed_and_gym_history_hold_only_the_callers_events(
    client: TestClient[Any], tenants: Tenants
) -> None:
    feed = client.get(f"{API}/events", headers=tenants.a, params={"limit": 1000})
    streamed = client.get(
        f"{API}/events",
        headers={**tenants.a, "Accept": "application/x-ndjson"},
        params={"limit": 1000},
    )
    records = feed.json()
    assert [json.loads(line) for line in streamed.text.splitlines()] == records
    assert {e["type"] for e in records} >= {"GymRegistered", "EmailClaimed", "EmailReleased"}
    for record in records:
        assert record["data"].get("gym_id", record["stream_id"]) == tenants.a_id, record
    history = client.get(f"{API}/gyms/me/history", headers=tenants.a).json()
    assert {e["stream_id"] for e in history} == {tenants.a_id}
    assert {e["type"] for e in history} <= GYM_TYPES
    for response in (feed, streamed, client.get(f"{API}/customers", headers=tenants.a)):
        assert tenants.b_id not in response.text
        assert tenants.b_customer not in response.text
