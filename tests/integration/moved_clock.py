"""The API on a clock the test moves: "today" is whatever the test says (the
`clock` and `moved_client` fixtures live in tests/integration/conftest.py)."""

from typing import Any

from litestar.testing import TestClient

from tests.conftest import bearer, signup_body

API = "/api/v1"


def owner_of(client: TestClient[Any], timezone: str = "UTC") -> dict[str, str]:
    body = signup_body(timezone=timezone)
    assert client.post(f"{API}/auth/signup", json=body).status_code == 201
    token = client.post(
        f"{API}/auth/login", data={"username": body["email"], "password": body["password"]}
    ).json()["access_token"]
    return bearer(token)
