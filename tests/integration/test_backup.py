"""make backup / make restore: restore, then rebuild, gives back the same read model."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from commands.application import GymLedger
from commands.context import CommandContext
from commands.customers import RegisterCustomer, register_customer
from domain.customer import NewCustomer
from tests.conftest import unique_email
from tests.integration.helpers import gyms_table, register
from tests.stack import ServerStack

READ_TABLES = {
    "customers": "SELECT id, gym_id, version, first_name, email FROM customers ORDER BY id",
    "event_index": "SELECT * FROM event_index ORDER BY position",
    "mail_outbox": "SELECT dedupe_key, status, attempts FROM mail_outbox ORDER BY dedupe_key",
}


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def snapshot(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        tables = {name: conn.execute(query).fetchall() for name, query in READ_TABLES.items()}
    return {"gyms": gyms_table(url), **tables}


def test_restore_then_rebuild_gives_back_the_same_read_model(
    fresh_database: str, stack: ServerStack, tmp_path: Path
) -> None:
    ledger = GymLedger(fresh_database)
    try:
        for _ in range(3):
            gym_id = register(ledger).id
            for _ in range(4):
                details = NewCustomer(first_name="B", last_name="R", email=unique_email())
                command = RegisterCustomer(gym_id=gym_id, details=details)
                register_customer(ledger, command, CommandContext.system())
    finally:
        ledger.close()
    assert cli(fresh_database, "projections", "rebuild").returncode == 0
    with psycopg.connect(fresh_database) as conn:  # as if the mails had gone out
        conn.execute("UPDATE mail_outbox SET status = 'sent', attempts = 1")
    before = snapshot(fresh_database)
    backup_dir = tmp_path / "backup"
    made = cli(fresh_database, "backup", str(backup_dir))
    assert made.returncode == 0, made.stderr
    target = stack.create_database()
    try:
        restored = cli(target, "restore", str(backup_dir))
        assert restored.returncode == 0, restored.stderr
        assert snapshot(target) == before  # mail statuses kept: nothing is sent again
        with psycopg.connect(target) as conn:  # the restore's COPY was counted, for /health
            counts = conn.execute("SELECT status, sum(n)::int FROM mail_outbox_counts GROUP BY 1")
            assert dict(counts.fetchall()) == {"sent": 15}
        assert cli(target, "audit", "verify").returncode == 0  # the chain survived intact
        again = cli(target, "restore", str(backup_dir))
        assert again.returncode != 0  # never over existing data
    finally:
        stack.drop_database(target)


def test_a_tampered_backup_restores_but_fails_verification(
    fresh_database: str, stack: ServerStack, tmp_path: Path
) -> None:
    ledger = GymLedger(fresh_database)
    try:
        register(ledger)
    finally:
        ledger.close()
    assert cli(fresh_database, "projections", "rebuild").returncode == 0
    with psycopg.connect(fresh_database) as conn:  # someone edits the log before the backup
        conn.execute("UPDATE gymledger_events SET state = state || ' '::bytea")
    backup_dir = tmp_path / "backup"
    assert cli(fresh_database, "backup", str(backup_dir)).returncode == 0
    assert backup_dir.stat().st_mode & 0o777 == 0o700
    assert {f.stat().st_mode & 0o777 for f in backup_dir.iterdir()} == {0o600}
    target = stack.create_database()
    try:
        restored = cli(target, "restore", str(backup_dir))
        assert restored.returncode == 1
        assert "does NOT verify" in restored.stderr
        with psycopg.connect(target) as conn:  # left as restored, for investigation
            assert conn.execute("SELECT count(*) FROM gymledger_events").fetchone() == (2,)
    finally:
        stack.drop_database(target)


def test_a_backup_whose_chain_was_emptied_is_not_rebuilt_into_a_signed_one(
    fresh_database: str, stack: ServerStack, tmp_path: Path
) -> None:
    """Rebuilding would chain and sign every event the chain no longer covers."""
    ledger = GymLedger(fresh_database)
    try:
        register(ledger)
    finally:
        ledger.close()
    assert cli(fresh_database, "projections", "rebuild").returncode == 0
    with psycopg.connect(fresh_database) as conn:  # events edited, chain emptied
        conn.execute("UPDATE gymledger_events SET state = state || ' '::bytea")
        conn.execute("TRUNCATE event_chain, chain_heads, chain_checkpoints")
    backup_dir = tmp_path / "backup"
    assert cli(fresh_database, "backup", str(backup_dir)).returncode == 0
    target = stack.create_database()
    try:
        restored = cli(target, "restore", str(backup_dir))
        assert restored.returncode == 1, restored.stdout
        assert "not covered by the audit chain" in restored.stderr
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT count(*) FROM chain_checkpoints").fetchone() == (0,)
    finally:
        stack.drop_database(target)
