"""Tampering with stored rows directly in PostgreSQL is detected, with its position."""

import hashlib
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from commands.application import GymLedger
from commands.context import CommandContext
from commands.customers import RegisterCustomer, register_customer
from domain.customer import NewCustomer
from infra.signing import KeyRing
from projections.audit_chain import content_digest, link_hash
from projections.audit_verify import verify_all, verify_gym
from projections.read_model import read_model_projector
from tests.conftest import unique_email
from tests.integration.helpers import register

GAP = 10  # sequence numbers skipped mid-log, as rolled-back transactions leave them


def add_customers(ledger: GymLedger, gyms: list[UUID], rounds: int) -> None:
    for gym_id in gyms * rounds:
        details = NewCustomer(first_name="T", last_name="P", email=unique_email())
        command = RegisterCustomer(gym_id=gym_id, details=details)
        register_customer(ledger, command, CommandContext.system())


def project(url: str, ring: KeyRing, witness_dir: str = "") -> None:
    with psycopg.connect(url) as conn:
        projector = read_model_projector(ring, batch_size=3, witness_dir=witness_dir)
        projector.ensure_position_row(conn)
        projector.catch_up(conn)


@pytest.fixture
def log(fresh_database: str, settings: Any) -> tuple[str, UUID]:
    """Two gyms' events with a gap in the positions, fully chained."""
    ledger = GymLedger(fresh_database)
    gyms = [register(ledger).id for _ in range(2)]
    add_customers(ledger, gyms, 2)
    with psycopg.connect(fresh_database) as conn:
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('gymledger_events', 'notification_id'),"
            " (SELECT max(notification_id) FROM gymledger_events) + %s)",
            (GAP,),
        )
    add_customers(ledger, gyms, 2)
    ledger.close()
    project(fresh_database, settings.key_ring())
    return fresh_database, gyms[0]


def check(url: str, ring: KeyRing, gym_id: UUID | None = None) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        report = verify_gym(conn, ring, gym_id) if gym_id else verify_all(conn, ring)
        return report.as_dict()


def positions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT notification_id FROM gymledger_events ORDER BY 1")
        return [r[0] for r in rows]


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(statement.encode(), params)


def test_clean_log_verifies(log: tuple[str, UUID], settings: Any) -> None:
    url, gym_id = log
    result = check(url, settings.key_ring())
    assert result["ok"] is True, result
    assert result["events_checked"] == len(positions(url))
    assert result["checkpoints_checked"] > 0
    assert check(url, settings.key_ring(), gym_id)["ok"] is True


def test_altered_event_is_reported_at_its_position(log: tuple[str, UUID], settings: Any) -> None:
    url, _ = log
    target = positions(url)[4]
    sql(
        url,
        "UPDATE gymledger_events SET state = convert_to(replace(convert_from(state,"
        " 'UTF8'), '\"T\"', '\"X\"'), 'UTF8') WHERE notification_id = %s",
        (target,),
    )
    first = check(url, settings.key_ring())["first_problem"]
    assert (first["kind"], first["position"]) == ("altered", target)


def test_deleted_event_is_reported(log: tuple[str, UUID], settings: Any) -> None:
    url, _ = log
    target = positions(url)[3]
    sql(url, "DELETE FROM gymledger_events WHERE notification_id = %s", (target,))
    first = check(url, settings.key_ring())["first_problem"]
    assert (first["kind"], first["position"]) == ("deleted", target)


def test_inserted_event_is_reported(log: tuple[str, UUID], settings: Any) -> None:
    url, _gym_id = log
    existing = positions(url)
    gap = next(p + 1 for p, q in itertools.pairwise(existing) if q - p > 1)
    # A forged copy of a real customer registration, slipped into the gap.
    sql(
        url,
        "INSERT INTO gymledger_events (originator_id, originator_version, topic, state,"
        " notification_id) SELECT gen_random_uuid(), 1, topic, state, %s"
        " FROM gymledger_events WHERE notification_id = %s",
        (gap, existing[-1]),
    )
    first = check(url, settings.key_ring())["first_problem"]
    assert (first["kind"], first["position"]) == ("inserted", gap)


def test_reordered_events_are_reported(log: tuple[str, UUID], settings: Any) -> None:
    url, _ = log
    p, q = positions(url)[2], positions(url)[5]
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE gymledger_events SET notification_id = -1 WHERE notification_id = %s", (p,)
        )
        conn.execute(
            "UPDATE gymledger_events SET notification_id = %s WHERE notification_id = %s", (p, q)
        )
        conn.execute(
            "UPDATE gymledger_events SET notification_id = %s WHERE notification_id = -1", (q,)
        )
    problems = check(url, settings.key_ring())["problems"]
    assert {(x["kind"], x["position"]) for x in problems} >= {("reordered", p), ("reordered", q)}


def test_chain_rewritten_without_the_key_is_reported(log: tuple[str, UUID], settings: Any) -> None:
    """Alter an event and recompute every later link: only the signatures catch it."""
    url, gym_id = log
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.position, e.originator_id, e.originator_version, e.topic, e.state"
            " FROM event_chain c JOIN gymledger_events e ON e.notification_id = c.position"
            " WHERE c.gym_id = %s ORDER BY c.position",
            (gym_id,),
        ).fetchall()
        index = next(i for i, row in enumerate(rows) if row[3].startswith("CustomerRegistered"))
        target = rows[index][0]
        forged_state = bytes(rows[index][4]).replace(b'"T"', b'"Forged"')
        assert forged_state != bytes(rows[index][4])
        conn.execute(
            "UPDATE gymledger_events SET state = %s WHERE notification_id = %s",
            (forged_state, target),
        )
        previous = bytes(32)
        for position, stream, version, topic, state in rows:
            state = forged_state if position == target else bytes(state)
            content = content_digest(stream, version, topic, state)
            link = link_hash(previous, position, content)
            conn.execute(
                "UPDATE event_chain SET content = %s, link = %s WHERE position = %s",
                (content, link, position),
            )
            previous = link
    result = check(url, settings.key_ring(), gym_id)
    assert result["ok"] is False
    kinds = {p["kind"] for p in result["problems"]}
    assert "chain_broken" in kinds
    assert kinds <= {"chain_broken", "unsigned_tail", "head_mismatch"}
    assert result["first_problem"]["position"] >= target
    # A forged signature does not help either.
    sql(
        url,
        "UPDATE chain_checkpoints SET signature = %s WHERE gym_id = %s",
        (hashlib.sha512(b"guess").digest(), gym_id),
    )
    assert {p["kind"] for p in check(url, settings.key_ring(), gym_id)["problems"]} >= {
        "bad_checkpoint"
    }


def run_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_command_line_verify_export_and_replay(
    log: tuple[str, UUID], tmp_path: Path, settings: Any
) -> None:
    url, gym_id = log
    assert run_cli(url, "audit", "verify").returncode == 0
    replay = run_cli(url, "replay", "--verify")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "read tables equal the replay" in replay.stdout
    export = tmp_path / "gym.ndjson"
    assert run_cli(url, "export", "--gym", str(gym_id), "-o", str(export)).returncode == 0
    text = export.read_text()
    assert "password_hash" not in text
    assert "argon2" not in text
    good = run_cli(url, "verify", str(export))
    assert good.returncode == 0, good.stdout
    assert '"checkpoints_checked": 0' not in good.stdout  # signatures were checked
    lines = text.splitlines()
    lines[3] = lines[3].replace('"version":1', '"version":7', 1)
    export.write_text("\n".join(lines) + "\n")
    assert run_cli(url, "verify", str(export)).returncode == 1
    # A drifted read table makes replay --verify fail and name the table.
    sql(
        url,
        "UPDATE customers SET first_name = 'Drifted' WHERE ctid IN"
        " (SELECT ctid FROM customers LIMIT 1)",
    )
    drifted = run_cli(url, "replay", "--verify")
    assert drifted.returncode == 1
    assert "customers" in drifted.stdout
    sql(
        url,
        "UPDATE gymledger_events SET state = state || ' '::bytea"
        " WHERE notification_id = (SELECT min(notification_id) FROM gymledger_events)",
    )
    assert run_cli(url, "audit", "verify").returncode == 1
