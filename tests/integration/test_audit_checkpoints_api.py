"""Signed checkpoints over HTTP: public keys, the latest checkpoint, verifying a kept one,
and verification that stays cheap when every owner asks for it at once."""

import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from litestar.testing import TestClient

from api.auth import owner_token
from api.verification import CONCURRENT, WAITING
from commands.application import GymLedger
from tests.conftest import bearer, signup_and_login
from tests.integration.helpers import head_position, register, wait_projected
from tests.integration.test_tamper_evidence import add_customers

API = "/api/v1"


def new_customer(client: TestClient[Any], owner: dict[str, str]) -> None:
    body = {"first_name": "Kept", "last_name": "Point", "email": f"k{time.time_ns()}@example.com"}
    assert client.post(f"{API}/customers", headers=owner, json=body).status_code == 201


def test_a_checkpoint_verifies_with_the_published_key_alone(client: TestClient[Any]) -> None:
    """Rebuilt here from the documented encoding, without any of the project's code."""
    _, token = signup_and_login(client)
    owner = bearer(token)
    new_customer(client, owner)
    keys = client.get(f"{API}/audit/keys", headers=owner).json()
    checkpoint = client.get(f"{API}/audit/checkpoint", headers=owner).json()
    assert checkpoint["algorithm"] == "Ed25519"
    key = next(k for k in keys if k["key_id"] == checkpoint["key_id"])
    assert key["signing"] is True
    signed_at = datetime.fromisoformat(checkpoint["signed_at"])
    micros = (signed_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    message = (
        b"gymledger-checkpoint-v1\x00"
        + UUID(checkpoint["gym_id"]).bytes
        + struct.pack(">q", checkpoint["position"])
        + bytes.fromhex(checkpoint["link"])
        + struct.pack(">qq", checkpoint["previous_position"], micros)
    )
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key["public_key"]))
    public.verify(bytes.fromhex(checkpoint["signature"]), message)  # raises if invalid


def test_a_kept_checkpoint_is_verified_against_the_log(client: TestClient[Any]) -> None:
    _, token = signup_and_login(client)
    owner = bearer(token)
    new_customer(client, owner)
    kept = client.get(f"{API}/audit/checkpoint", headers=owner).json()
    new_customer(client, owner)  # the log goes on: it still extends the kept checkpoint
    report = client.post(f"{API}/audit/verify", headers=owner, json=kept)
    assert report.status_code == 200, report.text
    assert report.json()["ok"] is True
    forged = {**kept, "link": "00" * 32}
    refused = client.post(f"{API}/audit/verify", headers=owner, json=forged).json()
    assert refused["ok"] is False
    assert refused["first_problem"]["kind"] == "bad_checkpoint"
    _, other_token = signup_and_login(client)
    other = client.post(f"{API}/audit/verify", headers=bearer(other_token), json=kept)
    assert other.status_code == 422
    for malformed in ({}, {**kept, "position": -1}, {**kept, "signature": "zz"}, [1]):
        response = client.post(f"{API}/audit/verify", headers=owner, json=malformed)
        assert response.status_code in (400, 422), response.text


def test_no_checkpoint_yet_is_404(client: TestClient[Any], settings: Any) -> None:
    token = owner_token(UUID(int=7), settings.jwt_secret, 60, 0, datetime.now(UTC))
    assert client.get(f"{API}/audit/checkpoint", headers=bearer(token)).status_code == 401
    _, fresh = signup_and_login(client)
    # Signed as soon as the projector has chained the signup (read-your-writes waited).
    assert client.get(f"{API}/audit/checkpoint", headers=bearer(fresh)).status_code == 200


def test_verifications_are_limited_per_gym(client: TestClient[Any], settings: Any) -> None:
    _, token = signup_and_login(client)
    owner = bearer(token)
    statuses = [
        client.get(f"{API}/audit/verify", headers=owner)
        for _ in range(settings.audit_verifications_per_minute + 1)
    ]
    assert [r.status_code for r in statuses[:-1]] == [200] * settings.audit_verifications_per_minute
    assert statuses[-1].status_code == 429
    assert int(statuses[-1].headers["retry-after"]) >= 1
    assert statuses[-1].json()["status_code"] == 429


def test_sixty_parallel_verifications_leave_commands_alone(
    client: TestClient[Any], settings: Any, ledger: GymLedger
) -> None:
    gyms = [register(ledger).id for _ in range(30)]
    add_customers(ledger, gyms, 10)
    wait_projected(settings.database_url, head_position(settings.database_url))
    tokens = [bearer(owner_token(g, settings.jwt_secret, 600, 0, datetime.now(UTC))) for g in gyms]
    _, writer_token = signup_and_login(client)
    writer = bearer(writer_token)
    started = threading.Barrier(61)
    begun = time.perf_counter()
    new_customer(client, writer)
    print(f"POST /customers alone: {(time.perf_counter() - begun) * 1000:.0f} ms")

    def verify(n: int) -> int:
        started.wait()
        return client.get(f"{API}/audit/verify", headers=tokens[n % 30]).status_code

    with ThreadPoolExecutor(61) as pool:
        results = [pool.submit(verify, n) for n in range(60)]
        started.wait()
        begun = time.perf_counter()
        new_customer(client, writer)  # answered while the verifications run
        command_seconds = time.perf_counter() - begun
        statuses = [r.result() for r in results]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= CONCURRENT + WAITING  # the rest: 429, never a 5xx
    print(f"POST /customers during 60 verifications: {command_seconds * 1000:.0f} ms")
