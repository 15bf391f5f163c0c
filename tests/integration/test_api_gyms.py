"""The gym REST contract, as clients of the earlier FastAPI service use it."""

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import psycopg
import pytest
from litestar.testing import TestClient

from tests.conftest import signup_and_login, signup_body, unique_email

API = "/api/v1"
GYM_FIELDS = {
    "id",
    "name",
    "email",
    "address",
    "description",
    "gym_type",
    "monthly_fee_cents",
    "currency",
    "timezone",
    "reminder_days",
    "created_at",
    "updated_at",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_signup_returns_the_gym_without_secrets(client: TestClient[Any]) -> None:
    body = signup_body(address="1 Main St", gym_type="crossfit", currency="usd")
    response = client.post(f"{API}/auth/signup", json=body)
    assert response.status_code == 201
    gym = response.json()
    assert set(gym) == GYM_FIELDS
    assert gym["email"] == body["email"]
    assert gym["currency"] == "USD"
    assert "password" not in response.text
    assert "argon2" not in response.text


def test_duplicate_email_is_refused_case_insensitively(client: TestClient[Any]) -> None:
    body = signup_body()
    assert client.post(f"{API}/auth/signup", json=body).status_code == 201
    again = client.post(f"{API}/auth/signup", json={**body, "email": body["email"].upper()})
    assert again.status_code == 400
    assert again.json() == {"detail": "Email already registered", "status_code": 400}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": " "}, "name"),
        ({"email": "nope"}, "email"),
        ({"monthly_fee_cents": -5}, "monthly_fee_cents"),
        ({"monthly_fee_cents": "ten"}, "monthly_fee_cents"),
        ({"currency": "XYZ"}, "currency"),
        ({"gym_type": "g" * 51}, "gym_type"),
        ({"password": "1234567"}, "password"),
        ({"password": "p" * 73}, "password"),
        ({"name": None}, "name"),
    ],
)
def test_invalid_signup_is_422_with_the_field_named(
    client: TestClient[Any], overrides: dict[str, Any], field: str
) -> None:
    response = client.post(f"{API}/auth/signup", json=signup_body(**overrides))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status_code"] == 422
    assert body["detail"][0]["loc"] == ["body", field]
    assert body["detail"][0]["msg"]


def test_missing_field_and_malformed_json_are_422(client: TestClient[Any]) -> None:
    missing = client.post(f"{API}/auth/signup", json={"email": unique_email()})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"][0] == "body"
    garbage = client.post(
        f"{API}/auth/signup", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code in (400, 422)
    assert "detail" in garbage.json()
    assert "status_code" in garbage.json()


def test_login_with_form_and_wrong_credentials(client: TestClient[Any]) -> None:
    body = signup_body()
    client.post(f"{API}/auth/signup", json=body)
    ok = client.post(
        f"{API}/auth/login", data={"username": body["email"].upper(), "password": body["password"]}
    )
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "bearer"
    for username, password in ((body["email"], "wrong-password"), (unique_email(), "whatever1")):
        bad = client.post(f"{API}/auth/login", data={"username": username, "password": password})
        assert bad.status_code == 400
        assert bad.json() == {"detail": "Incorrect email or password", "status_code": 400}
    as_json = client.post(f"{API}/auth/login", json={"username": body["email"]})
    assert as_json.status_code in (400, 415, 422)


def test_me_read_update_delete(client: TestClient[Any]) -> None:
    gym, token = signup_and_login(client)
    me = client.get(f"{API}/gyms/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json() == gym
    patched = client.patch(
        f"{API}/gyms/me", headers=bearer(token), json={"name": "Steel Works", "address": None}
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Steel Works"
    assert patched.json()["updated_at"] > gym["updated_at"]
    # Read-your-writes: the very next read shows the change.
    assert client.get(f"{API}/gyms/me", headers=bearer(token)).json()["name"] == "Steel Works"
    bad = client.patch(f"{API}/gyms/me", headers=bearer(token), json={"monthly_fee_cents": -1})
    assert bad.status_code == 422
    assert client.delete(f"{API}/gyms/me", headers=bearer(token)).status_code == 204
    assert client.get(f"{API}/gyms/me", headers=bearer(token)).status_code == 401
    assert client.patch(f"{API}/gyms/me", headers=bearer(token), json={}).status_code == 401


def test_reminder_days_default_to_a_week_and_zero_turns_reminders_off(
    client: TestClient[Any],
) -> None:
    gym, token = signup_and_login(client)
    assert gym["reminder_days"] == 7
    off = client.patch(f"{API}/gyms/me", headers=bearer(token), json={"reminder_days": 0})
    assert off.status_code == 200
    assert client.get(f"{API}/gyms/me", headers=bearer(token)).json()["reminder_days"] == 0
    for bad in (-1, 366, "7"):
        refused = client.patch(f"{API}/gyms/me", headers=bearer(token), json={"reminder_days": bad})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "reminder_days"]


def test_closing_releases_the_email(client: TestClient[Any]) -> None:
    body = signup_body()
    _, token = signup_and_login(client, email=body["email"], password=body["password"])
    client.delete(f"{API}/gyms/me", headers=bearer(token))
    again = client.post(f"{API}/auth/signup", json=body)
    assert again.status_code == 201


def test_changing_email_moves_the_claim(client: TestClient[Any]) -> None:
    old_body = signup_body()
    _, token = signup_and_login(client, **old_body)
    new_email = unique_email()
    moved = client.patch(f"{API}/gyms/me", headers=bearer(token), json={"email": new_email})
    assert moved.status_code == 200
    assert client.post(f"{API}/auth/signup", json=old_body).status_code == 201
    other = signup_body(email=new_email)
    assert client.post(f"{API}/auth/signup", json=other).status_code == 400
    login = client.post(
        f"{API}/auth/login", data={"username": new_email, "password": old_body["password"]}
    )
    assert login.status_code == 200


def test_bad_tokens_are_401(client: TestClient[Any], settings: Any) -> None:
    gym, token = signup_and_login(client)
    now = datetime.now(UTC)
    claims = {"sub": gym["id"], "iat": now, "exp": now + timedelta(hours=1)}
    expired = jwt.encode({**claims, "exp": now - timedelta(seconds=1)}, settings.jwt_secret)
    wrong_key = jwt.encode(claims, "another-secret-another-secret-another-secret")
    unsigned = jwt.encode(claims, key="", algorithm="none")  # "" is "no key" for alg none
    head, payload, sig = token.split(".")
    tampered = ".".join((head, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), sig))
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        bearer("not.a.jwt"),
        bearer(expired),
        bearer(wrong_key),
        bearer(unsigned),
        bearer(tampered),
    ):
        response = client.get(f"{API}/gyms/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["status_code"] == 401


def test_request_id_is_echoed_and_stored_on_events(client: TestClient[Any], settings: Any) -> None:
    request_id = "trace-abc-123"
    body = signup_body()
    response = client.post(f"{API}/auth/signup", json=body, headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    generated = client.get("/health").headers["x-request-id"]
    assert len(generated) >= 16
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT state FROM gymledger_events WHERE originator_id = %s",
            (response.json()["id"],),
        ).fetchone()
    assert row is not None
    stored = bytes(row[0]).decode()
    assert f'"correlation_id":"{request_id}"' in stored
    assert '"actor":"anonymous"' in stored
    assert body["password"] not in stored


def test_health_and_openapi(client: TestClient[Any]) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    schema = client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert f"{API}/auth/signup" in schema.json()["paths"]


def test_unknown_route_is_json_404(client: TestClient[Any]) -> None:
    response = client.get(f"{API}/nope")
    assert response.status_code == 404
    assert response.json()["status_code"] == 404


def test_signup_idempotency_key(client: TestClient[Any]) -> None:
    body = signup_body()
    headers = {"Idempotency-Key": f"signup-{body['email']}"}
    first = client.post(f"{API}/auth/signup", json=body, headers=headers)
    again = client.post(f"{API}/auth/signup", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other_password = client.post(
        f"{API}/auth/signup", json={**body, "password": "another-password"}, headers=headers
    )
    assert other_password.status_code == 422
    other_name = client.post(f"{API}/auth/signup", json={**body, "name": "X"}, headers=headers)
    assert other_name.status_code == 422
    without_key = client.post(f"{API}/auth/signup", json=body)
    assert without_key.status_code == 400  # the email is taken; no key, no replay
