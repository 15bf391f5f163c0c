"""Hashes made with earlier argon2 parameters are replaced at the owner's next login."""

from typing import Any
from uuid import UUID, uuid4

import psycopg
from argon2 import PasswordHasher
from litestar.testing import TestClient

from commands.application import GymLedger
from commands.context import CommandContext
from commands.gyms import load_gym
from domain import email_claim, gym
from infra.passwords import needs_rehash
from tests.conftest import unique_email
from tests.integration.helpers import wait_projected

PASSWORD = "correct horse"


def stored_hash(database_url: str, gym_id: UUID) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT password_hash FROM gym_logins WHERE gym_id = %s", (gym_id,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_login_replaces_an_outdated_hash_once(
    client: TestClient[Any], ledger: GymLedger, settings: Any
) -> None:
    # A gym as signed up before the parameters changed: argon2-cffi's 64 MiB defaults.
    email, gym_id, stamp = unique_email(), uuid4(), CommandContext.system().stamp()
    registered = gym.register(
        gym_id,
        gym.NewGym(
            name="Old Gym",
            email=email,
            password=PASSWORD,
            address=None,
            description=None,
            gym_type=None,
            monthly_fee_cents=0,
            currency="EUR",
        ),
        hash_password=PasswordHasher().hash,
        stamp=stamp,
    )
    assert needs_rehash(registered.password_hash)
    wait_projected(
        settings.database_url,
        ledger.append(registered, email_claim.claim(None, email, gym_id, stamp)),
    )

    def login(password: str) -> int:
        response = client.post("/api/v1/auth/login", data={"username": email, "password": password})
        return response.status_code

    assert login("wrong horse") == 400
    assert stored_hash(settings.database_url, gym_id) == registered.password_hash

    assert login(PASSWORD) == 200
    new_hash = stored_hash(settings.database_url, gym_id)
    assert new_hash != registered.password_hash
    assert not needs_rehash(new_hash)
    assert load_gym(ledger, gym_id).password_hash == new_hash  # the log says the same

    assert login(PASSWORD) == 200  # against the new hash, which is not replaced again
    assert login("wrong horse") == 400
    assert load_gym(ledger, gym_id).version == 2
