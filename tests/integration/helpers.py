"""Helpers for integration tests that drive the write side directly."""

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import msgspec
import psycopg

from commands.application import GymLedger
from commands.context import CommandContext
from commands.gyms import RegisterGym, UpdateGymProfile, load_gym
from commands.results import CommandResult
from domain import gym
from projections.engine import projection_position
from projections.read_model import READ_MODEL
from tests.conftest import unique_email


def register(ledger: GymLedger, email: str | None = None, **overrides: Any) -> CommandResult:
    fields: dict[str, Any] = {
        "name": "Test Gym",
        "email": email or unique_email(),
        "password": "test gym pass phrase",
        "monthly_fee_cents": 1000,
        "currency": "EUR",
    }
    fields.update(overrides)
    key = fields.pop("idempotency_key", None)
    command = RegisterGym(signup=msgspec.convert(fields, gym.NewGym), idempotency_key=key)
    return ledger.handle(command, CommandContext.system())


def rename_many(ledger: GymLedger, gym_ids: list[UUID], count: int, workers: int) -> None:
    def rename(i: int) -> None:
        changes = gym.ProfileChanges(name=f"Gym {i}", monthly_fee_cents=i)
        command = UpdateGymProfile(gym_id=gym_ids[i % len(gym_ids)], changes=changes)
        # Writers race on each gym; a loser is decided again on the newer version.
        ledger.handle(command, CommandContext.system())

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(rename, range(count)))


def wait_projected(database_url: str, position: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if projection_position(conn, READ_MODEL) >= position:
                return
            time.sleep(0.02)
    raise AssertionError(f"projector did not reach position {position} in {timeout}s")


def head_position(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM gymledger_events")
        return int(row.fetchone()[0])  # type: ignore[index]


def index_definitions(database_url: str) -> set[tuple[str, str]]:
    """Every index of the live tables, as PostgreSQL would recreate it."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        ).fetchall()
    return {(str(r[0]), str(r[1])) for r in rows}


def gyms_table(database_url: str) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, version, name, email, address, description, gym_type,"
            " monthly_fee_cents, currency, created_at, updated_at FROM gyms"
        ).fetchall()
    return {str(r[0]): tuple(r[1:]) for r in rows}


def replayed_gyms(ledger: GymLedger, database_url: str) -> dict[str, tuple[Any, ...]]:
    """Every open gym rebuilt from its own events (the write side's truth)."""
    with psycopg.connect(database_url) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT originator_id FROM gymledger_events WHERE topic LIKE 'Gym%%'"
            )
        ]
    result: dict[str, tuple[Any, ...]] = {}
    for gym_id in ids:
        gym = load_gym(ledger, gym_id)
        if not gym.closed:
            result[str(gym.id)] = (
                gym.version,
                gym.name,
                gym.email,
                gym.address,
                gym.description,
                gym.gym_type,
                gym.monthly_fee_cents,
                gym.currency,
                gym.created_at,
                gym.updated_at,
            )
    return result
