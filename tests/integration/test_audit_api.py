"""History, time travel, the event feed and auditor tokens over HTTP."""

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from litestar.testing import TestClient

from commands.application import GymLedger
from commands.context import CommandContext
from commands.customers import RegisterCustomer, register_customer
from domain.customer import NewCustomer
from tests.conftest import bearer, signup_and_login, unique_email

API = "/api/v1"


@pytest.fixture
def gym(client: TestClient[Any]) -> tuple[dict[str, Any], dict[str, str]]:
    created, token = signup_and_login(client)
    return created, bearer(token)


def auditor_for(
    client: TestClient[Any], owner: dict[str, str], seconds: int = 3600
) -> dict[str, str]:
    response = client.post(
        f"{API}/auth/auditor-tokens", headers=owner, json={"expires_in_seconds": seconds}
    )
    assert response.status_code == 201, response.text
    assert response.json()["scope"] == "auditor"
    return bearer(response.json()["access_token"])


def new_customer(client: TestClient[Any], owner: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"first_name": "Hist", "last_name": "Ory", "email": unique_email("c"), **extra}
    response = client.post(f"{API}/customers", headers=owner, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_histories_show_every_event_without_secrets(
    client: TestClient[Any], gym: tuple[dict[str, Any], dict[str, str]]
) -> None:
    created, owner = gym
    client.patch(
        f"{API}/gyms/me", headers={**owner, "X-Request-ID": "rename-1"}, json={"name": "Renamed"}
    )
    history = client.get(f"{API}/gyms/me/history", headers=owner).json()
    assert [e["type"] for e in history] == ["GymRegistered", "GymProfileUpdated"]
    assert [e["version"] for e in history] == [1, 2]
    assert history[0]["position"] < history[1]["position"]
    assert history[1]["actor"] == created["id"]
    assert history[1]["correlation_id"] == "rename-1"
    assert history[1]["data"] == {"name": "Renamed"}
    assert set(history[0]) == {
        "position",
        "stream_id",
        "version",
        "type",
        "recorded_at",
        "actor",
        "correlation_id",
        "data",
    }
    assert "password_hash" not in json.dumps(history)
    assert "argon2" not in json.dumps(history)
    c = new_customer(client, owner)
    url = f"{API}/customers/{c['id']}"
    client.patch(url, headers=owner, json={"notes": "n"})
    client.delete(url, headers=owner)
    customer_history = client.get(f"{url}/history", headers=owner)
    assert customer_history.status_code == 200  # removed customers' history stays readable
    assert [e["type"] for e in customer_history.json()] == [
        "CustomerRegistered",
        "CustomerDetailsChanged",
        "CustomerRemoved",
    ]


def test_time_travel(client: TestClient[Any], gym: tuple[dict[str, Any], dict[str, str]]) -> None:
    _, owner = gym
    c = new_customer(client, owner, notes="first")
    url = f"{API}/customers/{c['id']}"
    time.sleep(0.01)
    between = datetime.now(UTC)
    client.patch(url, headers=owner, json={"notes": "second"})
    assert client.get(url, headers=owner, params={"version": 1}).json()["notes"] == "first"
    v1 = client.get(url, headers=owner, params={"version": 1})
    assert v1.headers["etag"] == '"1"'
    assert (
        client.get(url, headers=owner, params={"as_of": between.isoformat()}).json()["notes"]
        == "first"
    )
    now = client.get(url, headers=owner, params={"as_of": datetime.now(UTC).isoformat()})
    assert now.json()["notes"] == "second"
    before = (datetime.fromisoformat(c["created_at"]) - timedelta(seconds=1)).isoformat()
    assert client.get(url, headers=owner, params={"as_of": before}).status_code == 404
    client.delete(url, headers=owner)
    assert client.get(url, headers=owner, params={"version": 2}).json()["notes"] == "second"
    gone = client.get(url, headers=owner, params={"as_of": datetime.now(UTC).isoformat()})
    assert gone.status_code == 404
    assert client.get(url, headers=owner, params={"version": 0}).status_code == 422


def test_feed_pages_filters_and_streams(
    client: TestClient[Any], gym: tuple[dict[str, Any], dict[str, str]]
) -> None:
    _, owner = gym
    for _ in range(3):
        new_customer(client, owner)
    everything = client.get(f"{API}/events", headers=owner, params={"limit": 1000}).json()
    positions = [e["position"] for e in everything]
    assert positions == sorted(positions)
    assert [e["type"] for e in everything].count("CustomerRegistered") == 3
    page1 = client.get(f"{API}/events", headers=owner, params={"limit": 2}).json()
    page2 = client.get(
        f"{API}/events", headers=owner, params={"after": page1[-1]["position"], "limit": 1000}
    ).json()
    assert page1 + page2 == everything
    only = client.get(f"{API}/events", headers=owner, params={"type": "CustomerRegistered"})
    assert [e["type"] for e in only.json()] == ["CustomerRegistered"] * 3
    streamed = client.get(
        f"{API}/events",
        headers={**owner, "Accept": "application/x-ndjson"},
        params={"limit": 1000},
    )
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line) for line in streamed.text.splitlines()] == everything
    for bad in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"type": "NoSuchEvent"}):
        assert client.get(f"{API}/events", headers=owner, params=bad).status_code == 422


def test_other_gyms_see_nothing_of_history_or_feed(
    client: TestClient[Any], gym: tuple[dict[str, Any], dict[str, str]]
) -> None:
    first, owner = gym
    c = new_customer(client, owner)
    _, other_token = signup_and_login(client)
    other = bearer(other_token)
    assert client.get(f"{API}/customers/{c['id']}/history", headers=other).status_code == 404
    assert (
        client.get(f"{API}/customers/{c['id']}", headers=other, params={"version": 1}).status_code
        == 404
    )
    feed = client.get(f"{API}/events", headers=other, params={"limit": 1000}).json()
    assert all(e["stream_id"] not in (c["id"], first["id"]) for e in feed)
    assert client.get(f"{API}/gyms/me/history", headers=other).json()[0]["stream_id"] != first["id"]


def test_auditor_token_reads_but_never_writes(
    client: TestClient[Any], gym: tuple[dict[str, Any], dict[str, str]], settings: Any
) -> None:
    _, owner = gym
    c = new_customer(client, owner)
    auditor = auditor_for(client, owner)
    url = f"{API}/customers/{c['id']}"
    for allowed in (
        client.get(f"{API}/gyms/me/history", headers=auditor),
        client.get(f"{url}/history", headers=auditor),
        client.get(url, headers=auditor, params={"version": 1}),
        client.get(f"{API}/events", headers=auditor),
        client.get(f"{API}/audit/verify", headers=auditor),
    ):
        assert allowed.status_code == 200, allowed.text
    for refused in (
        client.post(f"{API}/customers", headers=auditor, json={"first_name": "a"}),
        client.patch(url, headers=auditor, json={"notes": "x"}),
        client.delete(url, headers=auditor),
        client.patch(f"{API}/gyms/me", headers=auditor, json={"name": "x"}),
        client.delete(f"{API}/gyms/me", headers=auditor),
        client.post(f"{API}/auth/auditor-tokens", headers=auditor, json={}),
        client.get(f"{API}/customers", headers=auditor),
        client.get(url, headers=auditor),
        client.get(f"{API}/gyms/me", headers=auditor),
    ):
        assert refused.status_code == 403, refused.request.url
        assert refused.json()["status_code"] == 403
    assert client.get(url, headers=owner).json()["notes"] is None
    history = client.get(f"{API}/gyms/me/history", headers=owner).json()
    assert history[-1]["type"] == "AuditorAccessGranted"  # access itself is on record
    expired_claims = jwt.decode(
        auditor["Authorization"].split()[1], options={"verify_signature": False}
    ) | {"exp": datetime.now(UTC) - timedelta(seconds=1)}
    expired = jwt.encode(expired_claims, settings.jwt_secret, algorithm="HS256")
    assert client.get(f"{API}/events", headers=bearer(expired)).status_code == 401
    for bad in (0, 90 * 24 * 3600 + 1):
        response = client.post(
            f"{API}/auth/auditor-tokens", headers=owner, json={"expires_in_seconds": bad}
        )
        assert response.status_code == 422
    client.delete(f"{API}/gyms/me", headers=owner)
    assert client.get(f"{API}/events", headers=auditor).status_code == 401


def test_owner_verifies_a_clean_chain(
    client: TestClient[Any], gym: tuple[dict[str, Any], dict[str, str]]
) -> None:
    _, owner = gym
    new_customer(client, owner)
    report = client.get(f"{API}/audit/verify", headers=owner).json()
    assert report["ok"] is True
    assert report["events_checked"] >= 2
    assert report["checkpoints_checked"] >= 1
    assert report["first_problem"] is None


def test_feed_never_misses_or_repeats_under_concurrent_writers(
    client: TestClient[Any], gym: tuple[dict[str, Any], dict[str, str]], ledger: GymLedger
) -> None:
    created, owner = gym
    gym_id = created["id"]
    done = threading.Event()

    def write(worker: int) -> None:
        for i in range(15):
            details = NewCustomer(first_name=f"W{worker}", last_name=f"N{i}", email=unique_email())
            command = RegisterCustomer(gym_id=gym_id, details=details)
            register_customer(ledger, command, CommandContext.system())

    writers = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in writers:
        thread.start()
    seen: list[int] = []
    after = 0
    while True:
        page = client.get(
            f"{API}/events", headers=owner, params={"after": after, "limit": 7}
        ).json()
        seen += [e["position"] for e in page]
        after = seen[-1] if seen else 0
        if done.is_set() and not page:
            break
        if not any(t.is_alive() for t in writers):
            time.sleep(0.3)  # let the projector finish, then drain
            done.set()
    everything = client.get(f"{API}/events", headers=owner, params={"limit": 1000}).json()
    assert len(everything) == 2 + 6 * 15  # GymRegistered, EmailClaimed, customers
    assert seen == [e["position"] for e in everything]  # none missed, none twice
