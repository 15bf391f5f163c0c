"""Scratch builds: exactly the rebuilt projections' tables, shaped like the live ones, from
migrations that cannot reach another schema; and a blue-green swap that gives up
rather than queue readers behind a long query."""

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

from commands.application import GymLedger
from infra.migrate import Migration, apply_to
from projections.audit_chain import AuditChainProjection
from projections.engine import Projection
from projections.mail_outbox import MailOutboxProjection
from projections.read_model import read_model_projector
from projections.rebuild import (
    READ_TABLES,
    LiveTablesBusy,
    blue_green_rebuild,
    create_scratch,
    rebuilt_projections,
)
from tests.integration.helpers import register

BOOKKEEPING = {"projector_positions", "projection_faults"}


def _tables(conn: psycopg.Connection[Any], schema: str) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
    return {str(r[0]) for r in rows}


def _shape(conn: psycopg.Connection[Any], schema: str, table: str) -> dict[str, Any]:
    """Columns, constraints and indexes of one table, with its schema's name left out."""
    relation = sql.Identifier(schema, table).as_string()
    columns = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull, attgenerated,"
        " pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (relation,),
    ).fetchall()
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass ORDER BY conname",
        (relation,),
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = %s AND tablename = %s ORDER BY indexname",
        (schema, table),
    ).fetchall()
    text = repr((columns, constraints, indexes))
    return {"shape": text.replace(f"{schema}.", "<schema>.").replace("public.", "<schema>.")}


@pytest.mark.parametrize("projection", rebuilt_projections(), ids=lambda p: p.name)
def test_a_scratch_build_holds_exactly_its_projections_tables(
    settings: Any, projection: Projection
) -> None:
    schema = f"scratch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(settings.database_url) as conn, conn.transaction(force_rollback=True):
        create_scratch(conn, schema, [projection])
        assert _tables(conn, schema) == set(projection.tables) | BOOKKEEPING


def test_a_full_scratch_build_is_shaped_like_the_live_tables(settings: Any) -> None:
    schema = f"scratch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(settings.database_url) as conn, conn.transaction(force_rollback=True):
        create_scratch(conn, schema, rebuilt_projections())
        conn.execute("SET LOCAL search_path TO ''")  # both sides print qualified names
        for table in READ_TABLES:
            assert _shape(conn, schema, table) == _shape(conn, "public", table), table


NEVER_REBUILT: dict[str, Callable[[Any], Projection]] = {
    "mail_outbox": lambda _: MailOutboxProjection(),
    "audit_chain": lambda settings: AuditChainProjection(settings.key_ring()),
}


@pytest.mark.parametrize("never", NEVER_REBUILT)
def test_the_outbox_and_the_audit_chain_get_no_scratch_copy(settings: Any, never: str) -> None:
    with (
        psycopg.connect(settings.database_url) as conn,
        conn.transaction(force_rollback=True),
        pytest.raises(ValueError, match=f"never rebuilt: {never}"),
    ):
        create_scratch(conn, "never_built", [NEVER_REBUILT[never](settings)])


def test_an_unqualified_name_fails_instead_of_resolving_to_the_live_schema(
    settings: Any,
) -> None:
    # Migration 0010 as it was written before templates: in a scratch build it found
    # public.mail_outbox through the search path and held a SHARE lock on it.
    before = Migration(
        "0010_mail_log_index",
        "mail_outbox",
        "CREATE INDEX IF NOT EXISTS mail_outbox_gym ON mail_outbox (gym_id, id DESC);",
    )
    with psycopg.connect(settings.database_url) as conn, conn.transaction(force_rollback=True):
        conn.execute("CREATE SCHEMA unqualified_check")
        with pytest.raises(psycopg.errors.UndefinedTable):
            apply_to(conn, before, "unqualified_check")


def test_swap_gives_up_while_a_long_reader_holds_the_live_tables(
    fresh_database: str, settings: Any
) -> None:
    ledger = GymLedger(fresh_database)
    register(ledger)
    ledger.close()
    with psycopg.connect(fresh_database) as conn:
        projector = read_model_projector(settings.key_ring())
        projector.ensure_position_row(conn)
        projector.catch_up(conn)
        live_gyms = conn.execute("SELECT 'public.gyms'::regclass::oid").fetchone()
    with psycopg.connect(fresh_database) as reader:
        reader.execute("SELECT count(*) FROM public.customers")  # ACCESS SHARE until rollback
        with pytest.raises(LiveTablesBusy, match="live ones are unchanged"):
            blue_green_rebuild(fresh_database, swap_attempts=2)
        reader.rollback()
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("SELECT 'public.gyms'::regclass::oid").fetchone() == live_gyms
        left = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rebuild\\_%'"
        ).fetchall()
        assert left == []  # the discarded build's schema is gone


def test_replay_and_blue_green_refuse_a_schema_that_misses_migrations(
    fresh_database: str,
) -> None:
    with psycopg.connect(fresh_database) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE name = '0013_mail_outbox_counts'")
    env = {**os.environ, "DATABASE_URL": fresh_database}
    for command in (["replay", "--verify"], ["projections", "rebuild", "--blue-green"]):
        result = subprocess.run(
            [sys.executable, "-m", "workers.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert "0013_mail_outbox_counts" in result.stderr
        assert "run `gymledger migrate` first" in result.stderr
