"""Events stored in an old shape still load, replay and export (schema evolution)."""

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg

from commands.application import GymLedger
from commands.gyms import load_gym
from projections.export import export_gym, verify_export
from projections.read_model import read_model_projector


def store_v1_gym(url: str) -> uuid.UUID:
    """A GymRegistered exactly as version 1 wrote it: no `timezone` field."""
    gym_id = uuid.uuid4()
    v1_payload = {
        "originator_id": str(gym_id),
        "originator_version": 1,
        "timestamp": datetime(2025, 3, 1, 9, tzinfo=UTC).isoformat(),
        "metadata": {"actor": "anonymous", "correlation_id": "legacy-1"},
        "name": "Legacy Gym",
        "email": f"legacy-{gym_id.hex[:8]}@example.com",
        "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$legacy",
        "address": None,
        "description": None,
        "gym_type": None,
        "monthly_fee_cents": 1500,
        "currency": "EUR",
    }
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO gymledger_events (originator_id, originator_version, topic, state)"
            " VALUES (%s, 1, 'GymRegistered.v1', %s)",
            (gym_id, msgspec.json.encode(v1_payload)),
        )
    return gym_id


def test_v1_gym_registration_loads_replays_and_exports(fresh_database: str, settings: Any) -> None:
    gym_id = store_v1_gym(fresh_database)
    ledger = GymLedger(fresh_database)
    try:
        gym = load_gym(ledger, gym_id)  # load: upcast while reading the stream
    finally:
        ledger.close()
    assert (gym.name, gym.timezone) == ("Legacy Gym", "UTC")
    with psycopg.connect(fresh_database) as conn:
        projector = read_model_projector(settings.key_ring())
        projector.ensure_position_row(conn)
        assert projector.catch_up(conn) == 1  # replay: the projector reads it too
        row = conn.execute("SELECT name, timezone FROM gyms WHERE id = %s", (gym_id,)).fetchone()
        assert row == ("Legacy Gym", "UTC")
        lines = list(export_gym(conn, gym_id))  # export: shown in today's shape
    event = msgspec.json.decode(lines[1])
    assert event["type"] == "GymRegistered"
    assert event["topic"] == "GymRegistered.v1"  # the stored bytes are never rewritten
    assert event["data"]["timezone"] == "UTC"
    assert "password_hash" not in event["data"]
    assert verify_export(lines, settings.key_ring()).ok
