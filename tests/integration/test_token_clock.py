"""Tokens live by the app's clock: issued, checked and expired on the Clock that
create_app was given (infra/clock.py), so time is moved, never waited for."""

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import TestClient

from infra.clock import ManualClock
from tests.conftest import bearer, signup_body

API = "/api/v1"


def test_a_token_expires_when_the_apps_clock_passes_its_lifetime(
    client: TestClient[Any], settings: Any
) -> None:
    from api.app import create_app

    body = signup_body()
    assert client.post(f"{API}/auth/signup", json=body).status_code == 201
    start = datetime.now(UTC).replace(microsecond=0)
    clock = ManualClock(start)
    ttl = 60
    app = create_app(dataclasses.replace(settings, jwt_ttl_seconds=ttl), clock=clock)
    with TestClient(app, raise_server_exceptions=False) as timed:
        form = {"username": body["email"], "password": body["password"]}
        token = timed.post(f"{API}/auth/login", data=form).json()["access_token"]
        assert timed.get(f"{API}/gyms/me", headers=bearer(token)).status_code == 200
        clock.set(start + timedelta(seconds=ttl - 1))
        assert timed.get(f"{API}/gyms/me", headers=bearer(token)).status_code == 200
        clock.set(start + timedelta(seconds=ttl))
        expired = timed.get(f"{API}/gyms/me", headers=bearer(token))
        assert expired.status_code == 401
        # Issued by the same clock, a new token starts its own lifetime there.
        renewed = timed.post(f"{API}/auth/login", data=form).json()["access_token"]
        assert timed.get(f"{API}/gyms/me", headers=bearer(renewed)).status_code == 200
        # Before the clock reaches the moment it was issued, it is not yet valid.
        clock.set(start)
        assert timed.get(f"{API}/gyms/me", headers=bearer(renewed)).status_code == 401
