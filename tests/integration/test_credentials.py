"""Credentials over HTTP: password changes, auditor-token lists and revocation,
common passwords and the signup / auditor-grant rate limits."""

import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import jwt
import psycopg
import pytest
from litestar.testing import TestClient

from commands.application import GymLedger
from commands.context import CommandContext
from commands.gyms import (
    GrantAuditorAccess,
    RevokeAuditorAccess,
    grant_auditor_access,
    revoke_auditor_access,
)
from infra.settings import load_settings
from infra.signing import generate_private_pem
from projections.read_model import read_model_projector
from tests.conftest import bearer, signup_and_login, signup_body, unique_email
from tests.integration.helpers import register
from workers.setup import migrate

API = "/api/v1"
NEW_PASSWORD = "a fresh pass phrase"


@pytest.fixture
def owner(client: TestClient[Any]) -> tuple[dict[str, Any], dict[str, str], str]:
    """(signup body, owner headers, gym id)."""
    body = signup_body()
    created, token = signup_and_login(client, **body)
    return body, bearer(token), created["id"]


def login(client: TestClient[Any], email: str, password: str) -> Any:
    return client.post(f"{API}/auth/login", data={"username": email, "password": password})


def change_password(
    client: TestClient[Any], headers: dict[str, str], current: str, new: str = NEW_PASSWORD
) -> Any:
    return client.post(
        f"{API}/auth/password",
        headers=headers,
        json={"current_password": current, "new_password": new},
    )


def auditor_token(client: TestClient[Any], headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(
        f"{API}/auth/auditor-tokens", headers=headers, json={"expires_in_seconds": 3600}
    )
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


def token_id_of(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def test_a_password_change_ends_every_earlier_token_and_the_old_password(
    client: TestClient[Any], owner: tuple[dict[str, Any], dict[str, str], str]
) -> None:
    body, headers, _ = owner
    second_session = bearer(login(client, body["email"], body["password"]).json()["access_token"])
    auditor = bearer(auditor_token(client, headers)["access_token"])
    assert client.get(f"{API}/gyms/me/history", headers=auditor).status_code == 200

    changed = change_password(client, headers, body["password"])
    assert changed.status_code == 204, changed.text

    for stale in (headers, second_session, auditor):
        refused = client.get(f"{API}/gyms/me/history", headers=stale)
        assert refused.status_code == 401, refused.text
        assert refused.json()["status_code"] == 401
    assert login(client, body["email"], body["password"]).status_code == 400
    fresh = login(client, body["email"], NEW_PASSWORD)
    assert fresh.status_code == 200
    new_headers = bearer(fresh.json()["access_token"])
    assert client.get(f"{API}/gyms/me", headers=new_headers).status_code == 200
    history = client.get(f"{API}/gyms/me/history", headers=new_headers).json()
    assert [e["type"] for e in history][-1] == "GymPasswordChanged"
    assert history[-1]["data"] == {"token_generation": 1}
    feed = client.get(f"{API}/events", headers=new_headers, params={"type": "GymPasswordChanged"})
    assert [e["type"] for e in feed.json()] == ["GymPasswordChanged"]
    for text in (json.dumps(history), feed.text):
        assert "argon2" not in text
        assert "password_hash" not in text
        assert NEW_PASSWORD not in text


def test_password_change_refusals(
    client: TestClient[Any], owner: tuple[dict[str, Any], dict[str, str], str]
) -> None:
    body, headers, _ = owner
    wrong = change_password(client, headers, "not the password")
    assert wrong.status_code == 400
    assert wrong.json() == {"detail": "Incorrect password", "status_code": 400}
    for weak in ("short", "password1", "12345678", body["email"], body["password"]):
        invalid = change_password(client, headers, body["password"], new=weak)
        assert invalid.status_code == 422, (weak, invalid.text)
        assert invalid.json()["detail"][0]["loc"] == ["body", "new_password"]
    missing = client.post(f"{API}/auth/password", headers=headers, json={"new_password": "x"})
    assert missing.status_code == 422
    no_token = client.post(
        f"{API}/auth/password",
        json={"current_password": body["password"], "new_password": NEW_PASSWORD},
    )
    assert no_token.status_code == 401
    auditor = bearer(auditor_token(client, headers)["access_token"])
    assert change_password(client, auditor, body["password"]).status_code == 403
    # Nothing of that changed anything: the old token and password still work.
    assert client.get(f"{API}/gyms/me", headers=headers).status_code == 200
    assert login(client, body["email"], body["password"]).status_code == 200


def test_tokens_from_before_generations_count_as_generation_zero(
    client: TestClient[Any], settings: Any, owner: tuple[dict[str, Any], dict[str, str], str]
) -> None:
    """Clients' existing tokens carry no generation claim: they keep working until the
    first password change, and stop then."""
    body, headers, gym_id = owner
    now = datetime.now(UTC)
    legacy = jwt.encode(
        {"sub": gym_id, "iat": now, "exp": now + timedelta(hours=1)},
        settings.jwt_secret,
        algorithm="HS256",
    )
    assert client.get(f"{API}/gyms/me", headers=bearer(legacy)).status_code == 200
    assert change_password(client, headers, body["password"]).status_code == 204
    assert client.get(f"{API}/gyms/me", headers=bearer(legacy)).status_code == 401


def test_a_generation_claim_other_than_the_gyms_is_refused(
    client: TestClient[Any], settings: Any, owner: tuple[dict[str, Any], dict[str, str], str]
) -> None:
    """Signed with the right key but of the wrong type, or a generation the gym never
    reached: both are refused like any bad token."""
    _, headers, gym_id = owner
    secret = settings.jwt_secret
    now = datetime.now(UTC)
    for generation in (True, -1, "0", 1.5, 7):
        claims = {"sub": gym_id, "iat": now, "exp": now + timedelta(hours=1), "gen": generation}
        token = jwt.encode(claims, secret, algorithm="HS256")
        assert client.get(f"{API}/gyms/me", headers=bearer(token)).status_code == 401, generation
    assert client.get(f"{API}/gyms/me", headers=headers).status_code == 200


def test_auditor_tokens_are_listed_newest_first_and_revocable(
    client: TestClient[Any], owner: tuple[dict[str, Any], dict[str, str], str]
) -> None:
    _, headers, _ = owner
    first, second = auditor_token(client, headers), auditor_token(client, headers)
    listed = client.get(f"{API}/auth/auditor-tokens", headers=headers)
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    assert [r["id"] for r in rows] == [token_id_of(second["access_token"]),
                                       token_id_of(first["access_token"])]  # fmt: skip
    assert {"id", "granted_at", "expires_at", "revoked", "revoked_at"} <= set(rows[0])
    assert not any(r["revoked"] for r in rows)
    assert datetime.fromisoformat(rows[0]["expires_at"]) == datetime.fromisoformat(
        second["expires_at"]
    )

    revoked_id = token_id_of(first["access_token"])
    gone = client.delete(f"{API}/auth/auditor-tokens/{revoked_id}", headers=headers)
    assert gone.status_code == 204, gone.text
    assert client.get(f"{API}/events", headers=bearer(first["access_token"])).status_code == 401
    assert client.get(f"{API}/events", headers=bearer(second["access_token"])).status_code == 200
    rows = client.get(f"{API}/auth/auditor-tokens", headers=headers).json()
    assert {r["id"]: r["revoked"] for r in rows} == {
        revoked_id: True,
        token_id_of(second["access_token"]): False,
    }
    # Revoking again changes nothing and says so the same way (DELETE is idempotent).
    again = client.delete(f"{API}/auth/auditor-tokens/{revoked_id}", headers=headers)
    assert again.status_code == 204
    history = client.get(f"{API}/gyms/me/history", headers=headers).json()
    revocations = [e for e in history if e["type"] == "AuditorAccessRevoked"]
    assert [e["data"] for e in revocations] == [{"token_id": revoked_id}]


def test_auditor_token_management_is_the_owners_alone(
    client: TestClient[Any], owner: tuple[dict[str, Any], dict[str, str], str]
) -> None:
    _, headers, _ = owner
    issued = auditor_token(client, headers)
    auditor = bearer(issued["access_token"])
    token_id = token_id_of(issued["access_token"])
    assert client.get(f"{API}/auth/auditor-tokens", headers=auditor).status_code == 403
    own = f"{API}/auth/auditor-tokens/{token_id}"
    assert client.delete(own, headers=auditor).status_code == 403
    assert client.get(f"{API}/auth/auditor-tokens").status_code == 401
    _, other_token = signup_and_login(client)
    other = bearer(other_token)
    assert client.get(f"{API}/auth/auditor-tokens", headers=other).json() == []
    foreign = client.delete(f"{API}/auth/auditor-tokens/{token_id}", headers=other)
    assert foreign.status_code == 404
    assert foreign.json() == {"detail": "Auditor token not found", "status_code": 404}
    unknown = client.delete(f"{API}/auth/auditor-tokens/{uuid4()}", headers=headers)
    assert unknown.status_code == 404
    bad_id = client.delete(f"{API}/auth/auditor-tokens/not-a-uuid", headers=headers)
    assert bad_id.status_code in (400, 404, 422)
    assert client.get(f"{API}/events", headers=auditor).status_code == 200  # still valid


def test_auditor_token_list_pages(
    client: TestClient[Any], owner: tuple[dict[str, Any], dict[str, str], str]
) -> None:
    _, headers, _ = owner
    ids = [token_id_of(auditor_token(client, headers)["access_token"]) for _ in range(3)]
    page = client.get(f"{API}/auth/auditor-tokens", headers=headers, params={"limit": 2})
    rest = client.get(
        f"{API}/auth/auditor-tokens", headers=headers, params={"limit": 2, "offset": 2}
    )
    assert [r["id"] for r in page.json() + rest.json()] == ids[::-1]
    too_many = client.get(f"{API}/auth/auditor-tokens", headers=headers, params={"limit": 201})
    assert too_many.status_code == 422


def test_signup_refuses_common_passwords(client: TestClient[Any]) -> None:
    for common in ("password1", "iloveyou", "qwertyuiop"):
        response = client.post(f"{API}/auth/signup", json=signup_body(password=common))
        assert response.status_code == 422, (common, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", "password"]


def test_closing_a_gym_still_ends_its_tokens(
    client: TestClient[Any], owner: tuple[dict[str, Any], dict[str, str], str]
) -> None:
    body, headers, _ = owner
    auditor = bearer(auditor_token(client, headers)["access_token"])
    assert client.delete(f"{API}/gyms/me", headers=headers).status_code == 204
    assert client.get(f"{API}/gyms/me", headers=headers).status_code == 401
    assert client.get(f"{API}/events", headers=auditor).status_code == 401
    assert login(client, body["email"], body["password"]).status_code == 400


@pytest.fixture
def limited(settings: Any, projector: None) -> Iterator[TestClient[Any]]:
    """An API whose signups and auditor grants are limited to 2 per address per window."""
    from api.app import create_app

    strict = dataclasses.replace(
        settings,
        signup_attempts_per_address=2,
        queue_namespace=f"signup-limit-{uuid4().hex}",
    )
    with TestClient(create_app(strict), raise_server_exceptions=False) as api:
        yield api


def test_signups_and_auditor_grants_are_rate_limited_per_address(
    limited: TestClient[Any],
) -> None:
    codes = [
        limited.post(f"{API}/auth/signup", json=signup_body(email=unique_email())).status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 429]
    refused = limited.post(f"{API}/auth/signup", json=signup_body())
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["status_code"] == 429


def test_auditor_grants_are_rate_limited_per_address(
    client: TestClient[Any], limited: TestClient[Any]
) -> None:
    body = signup_body()
    assert client.post(f"{API}/auth/signup", json=body).status_code == 201
    token = login(limited, body["email"], body["password"]).json()["access_token"]
    grant = {"expires_in_seconds": 60}
    codes = [
        limited.post(f"{API}/auth/auditor-tokens", headers=bearer(token), json=grant).status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 429]


def test_limits_are_off_by_default_outside_production(settings: Any, tmp_path: Path) -> None:
    assert settings.signup_attempts_per_address == 0
    base = {"DATABASE_URL": "postgresql://x", "REDIS_URL": "redis://x", "DATA_DIR": str(tmp_path)}
    production = load_settings(
        {
            **base,
            "ENVIRONMENT": "production",
            "JWT_SECRET": "j" * 40,
            "AUDIT_SIGNING_KEY": generate_private_pem(),
        }
    )
    assert production.signup_attempts_per_address == 10
    configured = load_settings({**base, "SIGNUP_ATTEMPTS_PER_ADDRESS": "5"})
    assert configured.signup_attempts_per_address == 5


def test_upgrading_copies_earlier_auditor_grants_from_the_log(fresh_database: str) -> None:
    """Grants made before the auditor_tokens table existed are listed and revocable
    after migrating, and the projector applies what follows without tripping on them."""
    ledger = GymLedger(fresh_database)
    projector = read_model_projector(load_settings().key_ring())
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    try:
        gym_id = register(ledger).id
        token_id = uuid4()
        grant = GrantAuditorAccess(
            gym_id=gym_id, token_id=token_id, expires_at=expires_at, token_generation=0
        )
        grant_auditor_access(ledger, grant, CommandContext.system())
        with psycopg.connect(fresh_database) as conn:
            projector.ensure_position_row(conn)
            projector.catch_up(conn)
            conn.commit()
            # As the database was before migration 0011.
            conn.execute("DROP TABLE auditor_tokens")
            conn.execute("ALTER TABLE gyms DROP COLUMN token_generation")
            conn.execute("DELETE FROM schema_migrations WHERE name = '0011_credentials'")
            conn.commit()
        assert migrate(fresh_database) == ["0011_credentials"]
        with psycopg.connect(fresh_database) as conn:
            rows = conn.execute(
                "SELECT token_id, gym_id, expires_at, revoked_at FROM auditor_tokens"
            ).fetchall()
            assert rows == [(token_id, gym_id, expires_at, None)]
            revoke = RevokeAuditorAccess(gym_id=gym_id, token_id=token_id)
            revoke_auditor_access(ledger, revoke, CommandContext.system())
            projector.catch_up(conn)
            conn.commit()
            revoked_at = conn.execute("SELECT revoked_at FROM auditor_tokens").fetchone()
            assert revoked_at is not None
            assert revoked_at[0] is not None
            # Replaying the whole log over the copied rows gives the same table.
            projector.reset(conn)
            projector.catch_up(conn)
            conn.commit()
            again = conn.execute("SELECT token_id, revoked_at FROM auditor_tokens").fetchall()
            assert again == [(token_id, revoked_at[0])]
    finally:
        ledger.close()


# --- A projector that lags behind: the change is recorded, not yet in effect ----------

LAGGING_PASSWORD = "violet kettle harbour 42"
PENDING = {
    "status": "pending",
    "detail": "Recorded; takes effect when the projector applies it. Until then the tokens"
    " it ends are still accepted.",
}


def _project(database_url: str) -> None:
    """Apply the log to the read model once, as the projector would."""
    projector = read_model_projector(load_settings().key_ring())
    with psycopg.connect(database_url, autocommit=True) as conn:
        projector.ensure_position_row(conn)
        projector.catch_up(conn)


def _eventually_refused(client: TestClient[Any], path: str, headers: dict[str, str]) -> None:
    """The API process drops its cached view of the gym when it hears the projector."""
    deadline = time.monotonic() + 10
    while client.get(path, headers=headers).status_code != 401:
        assert time.monotonic() < deadline, f"{path} still accepts the token"
        time.sleep(0.05)


@pytest.fixture
def no_projector(fresh_database: str, settings: Any) -> Iterator[tuple[TestClient[Any], str]]:
    """An API over a database no projector follows: its read model moves only when a
    test calls `_project`, and commands wait a fifth of a second for it."""
    from api.app import create_app

    lagging = dataclasses.replace(
        settings, database_url=fresh_database, read_your_writes_timeout=0.2
    )
    with TestClient(create_app(lagging), raise_server_exceptions=False) as api:
        yield api, fresh_database


def _lagging_owner(api: TestClient[Any], database_url: str) -> tuple[str, dict[str, str]]:
    ledger = GymLedger(database_url)
    try:
        email = unique_email()
        register(ledger, email=email, password=LAGGING_PASSWORD)
    finally:
        ledger.close()
    _project(database_url)
    token = login(api, email, LAGGING_PASSWORD)
    assert token.status_code == 200, token.text
    return email, bearer(token.json()["access_token"])


def test_a_revocation_the_projector_has_not_applied_is_202_not_204(
    no_projector: tuple[TestClient[Any], str],
) -> None:
    api, database_url = no_projector
    _, owner = _lagging_owner(api, database_url)
    issued = auditor_token(api, owner)
    auditor = bearer(issued["access_token"])
    revoke = f"{API}/auth/auditor-tokens/{token_id_of(issued['access_token'])}"
    _project(database_url)

    pending = api.delete(revoke, headers=owner)
    assert pending.status_code == 202, pending.text
    assert pending.json() == PENDING
    # What 202 says: recorded, but the token still works until the projector runs.
    assert api.get(f"{API}/events", headers=auditor).status_code == 200
    # Revoking again records nothing, and still must not claim the token is refused.
    again = api.delete(revoke, headers=owner)
    assert again.status_code == 202, again.text

    _project(database_url)
    assert api.delete(revoke, headers=owner).status_code == 204
    assert api.get(f"{API}/events", headers=auditor).status_code == 401


def test_a_password_change_the_projector_has_not_applied_is_202_not_204(
    no_projector: tuple[TestClient[Any], str],
) -> None:
    api, database_url = no_projector
    email, owner = _lagging_owner(api, database_url)

    pending = change_password(api, owner, LAGGING_PASSWORD)
    assert pending.status_code == 202, pending.text
    assert pending.json() == PENDING
    assert api.get(f"{API}/gyms/me", headers=owner).status_code == 200  # not yet ended

    _project(database_url)
    _eventually_refused(api, f"{API}/gyms/me", owner)
    assert login(api, email, NEW_PASSWORD).status_code == 200


def test_the_202_answers_are_in_the_openapi_schema(client: TestClient[Any]) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    for path, method in (
        ("/api/v1/auth/password", "post"),
        ("/api/v1/auth/auditor-tokens/{token_id}", "delete"),
    ):
        responses = paths[path][method]["responses"]
        assert {"202", "204"} <= set(responses), (path, sorted(responses))
        schema = responses["202"]["content"]["application/json"]["schema"]
        assert schema, path
