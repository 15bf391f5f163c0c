"""An event a projection cannot handle parks the projection: no spinning, no skipping."""

import dataclasses
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from litestar.testing import TestClient

from commands.application import GymLedger
from domain import customer
from domain.customer import NewCustomer
from domain.events import EventMetadata, Stamp
from infra.event_codec import CODEC
from projections.read_model import READ_MODEL, read_model_projector
from tests.integration.helpers import register


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_poison_event_parks_the_projection_until_resumed(
    fresh_database: str, settings: Any
) -> None:
    from api.app import create_app

    ledger = GymLedger(fresh_database)
    first = register(ledger).id
    poisoned_stream = uuid.uuid4()
    with psycopg.connect(fresh_database) as conn:
        poison = conn.execute(
            "INSERT INTO gymledger_events (originator_id, originator_version, topic, state)"
            " VALUES (%s, 1, 'CustomerRegistered.v1', %s) RETURNING notification_id",
            (poisoned_stream, b'{"garbage": true}'),
        ).fetchone()[0]  # type: ignore[index]
    later = register(ledger).id  # recorded after the poison: must not be skipped over
    projector = read_model_projector(settings.key_ring(), batch_size=50)
    with psycopg.connect(fresh_database) as conn:
        projector.ensure_position_row(conn)
        projector.catch_up(conn)
        assert projector.catch_up(conn) == 0  # parked: nothing applied, nothing retried
        fault = conn.execute(
            "SELECT position, error FROM projection_faults WHERE projection = %s", (READ_MODEL,)
        ).fetchone()
        assert fault is not None
        assert fault[0] == poison
        assert "ValidationError" in fault[1]
        gyms = {r[0] for r in conn.execute("SELECT id FROM gyms")}
        assert first in gyms
        assert later not in gyms
        position = conn.execute(
            "SELECT position FROM projector_positions WHERE name = %s", (READ_MODEL,)
        ).fetchone()
        assert position == (poison - 1,)

    api = create_app(dataclasses.replace(settings, database_url=fresh_database))
    with TestClient(api) as client:
        # Parked, the API still serves (from the log): degraded, never unready.
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["failing"] == ["projector_parked"]
        assert ready.json()["checks"]["projector_parked"]["position"] == poison
        # Anyone may ask /health: they learn where it is parked, never why (the error
        # text can quote event data); operators read it in the log or the CLI.
        for anonymous in (ready, client.get("/health")):
            assert anonymous.json()["checks"]["projector_parked"] == {
                "position": poison,
                "message": "parked at an event it cannot apply; see `gymledger projections status`",
            }
            assert "ValidationError" not in anonymous.text
            assert "garbage" not in anonymous.text
        status = _cli(fresh_database, "projections", "status")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["parked"] == {
            "position": poison,
            "error": fault[1],
            "failed_at": json.loads(status.stdout)["parked"]["failed_at"],
        }
        scraped = client.get("/metrics").text
        assert 'gymledger_projection_parked{projection="read_model"} 1.0' in scraped
        assert 'gymledger_health_check{check="projector_parked"} 0.0' in scraped

        # The fix: the operator repairs the row, then resumes the projection.
        repaired = customer.register(
            poisoned_stream,
            first,
            NewCustomer(first_name="Re", last_name="Paired", email="repaired@example.com"),
            today=date(2026, 1, 1),
            stamp=Stamp(
                at=datetime.now(UTC), metadata=EventMetadata(actor="ops", correlation_id="repair")
            ),
        )
        with psycopg.connect(fresh_database) as conn:
            conn.execute(
                "UPDATE gymledger_events SET state = %s WHERE notification_id = %s",
                (CODEC.encode(repaired)[1], poison),
            )
        resumed = _cli(fresh_database, "projections", "resume")
        assert resumed.returncode == 0, resumed.stderr
        assert f"resumed at position {poison}" in resumed.stdout
        with psycopg.connect(fresh_database) as conn:
            assert projector.catch_up(conn) >= 2
            assert later in {r[0] for r in conn.execute("SELECT id FROM gyms")}
        ready = client.get("/health/ready")
        assert (ready.status_code, ready.json()["status"], ready.json()["failing"]) == (
            200,
            "ok",
            [],
        )
        assert json.loads(_cli(fresh_database, "projections", "status").stdout)["parked"] is None
    ledger.close()
