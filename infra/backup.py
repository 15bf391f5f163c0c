"""Backups of the tables that cannot be rebuilt, with COPY (no pg_dump version coupling).

The event log is the source of truth; the mail outbox (what was sent) and the audit
chain (what was signed) must survive with it. Everything else is rebuilt from the
log after a restore. A backup is a directory: one binary COPY file per table and a
manifest with row counts, so a restore can check it read everything.
"""

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import sql

MANIFEST = "manifest.json"


def backup(database_url: str, tables: Sequence[str], directory: Path) -> dict[str, int]:
    """Copy `tables` from one consistent snapshot; returns rows per table."""
    directory.mkdir(parents=True, exist_ok=False, mode=0o700)
    counts: dict[str, int] = {}
    with psycopg.connect(database_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction(), conn.cursor() as cur:
            for table in tables:
                query = sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(sql.Identifier(table))
                with _private(directory / f"{table}.copy") as out, cur.copy(query) as copy:
                    for chunk in copy:
                        out.write(chunk)
                counted = cur.execute(sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(table))).fetchone()  # fmt: skip
                rows = int(counted[0]) if counted else 0
                counts[table] = rows
    manifest = {"created_at": datetime.now(UTC).isoformat(), "tables": counts}
    with _private(directory / MANIFEST) as out:
        out.write(json.dumps(manifest, indent=2).encode())
    return counts


def _private(path: Path) -> BinaryIO:
    """A new file only its owner can read: backups hold password hashes and the log."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def restore(database_url: str, directory: Path, sequences: dict[str, str]) -> dict[str, int]:
    """Load a backup into empty tables in one transaction; `sequences` maps a table to
    its serial column, whose sequence is moved past the restored values."""
    manifest = json.loads((directory / MANIFEST).read_text())
    tables: dict[str, int] = manifest["tables"]
    with psycopg.connect(database_url) as conn, conn.transaction(), conn.cursor() as cur:
        for table, expected in tables.items():
            ident = sql.Identifier(table)
            existing = cur.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
            if existing and existing[0]:
                raise RuntimeError(f"refusing to restore into non-empty table {table}")
            query = sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(ident)
            with cur.copy(query) as copy, (directory / f"{table}.copy").open("rb") as source:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
            loaded = cur.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
            if not loaded or loaded[0] != expected:
                raise RuntimeError(f"{table}: expected {expected} rows, loaded {loaded}")
        for table, column in sequences.items():
            highest = sql.SQL("SELECT greatest(max({}), 1) FROM {}").format(
                sql.Identifier(column), sql.Identifier(table)
            )
            cur.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence(%s, %s), ({}))").format(highest),
                (table, column),
            )
    return tables
