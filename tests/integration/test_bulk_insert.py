"""A batch's rows read back the same whichever way BulkInsert sends them: COPY outside
a pipeline, one JSON document inside one or with a conflict clause (projections/engine.py).
"""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.engine import BulkInsert

COLUMNS = {
    "position": "bigint",
    "id": "uuid",
    "name": "text",
    "born": "date",
    "at": "timestamptz",
    "active": "boolean",
    "content": "bytea",
}
# What PostgreSQL's text holds: any character but NUL (the API refuses NUL in input).
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
ROW = st.tuples(
    st.integers(-(2**63), 2**63 - 1),
    st.uuids(),
    st.none() | TEXT,
    st.none() | st.dates(),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES),
    st.booleans(),
    st.none() | st.binary(max_size=64),
)


@pytest.fixture(scope="module")
def conn(settings: Any) -> Any:
    with psycopg.connect(settings.database_url, autocommit=True) as connection:
        columns = ", ".join(f"{name} {pg_type}" for name, pg_type in COLUMNS.items())
        connection.execute(f"CREATE TEMP TABLE bulk_rows ({columns})")
        yield connection


def read_back(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM bulk_rows ORDER BY 1, 2").fetchall()  # noqa: S608
    conn.execute("TRUNCATE bulk_rows")
    return rows


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(ROW, max_size=8, unique_by=lambda r: (r[0], r[1])))
def test_json_and_copy_write_the_same_rows(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    insert = BulkInsert("bulk_rows", COLUMNS)
    with conn.cursor() as cur:
        for row in rows:
            insert.add(*row)
        insert.flush(cur)  # COPY: not in a pipeline
        copied = read_back(conn)
        for row in rows:
            insert.add(*row)
        with conn.pipeline():
            insert.flush(cur)  # the JSON document
        sent = read_back(conn)
    assert sent == copied == sorted(rows, key=lambda r: (r[0], r[1]))


def test_a_conflict_clause_skips_rows_already_there(conn: Any) -> None:
    insert = BulkInsert("bulk_rows", COLUMNS, suffix="ON CONFLICT DO NOTHING")
    conn.execute("CREATE UNIQUE INDEX ON bulk_rows (position)")
    try:
        row = (1, UUID(int=1), "first", None, datetime(2026, 12, 2, tzinfo=UTC), True, b"\x00\xff")
        with conn.cursor() as cur:
            insert.add(*row)
            insert.flush(cur)
            insert.add(*row[:2], "second", *row[3:])
            insert.add(2, UUID(int=2), "other", None, row[4], False, None)
            insert.flush(cur)
        names = [r[2] for r in read_back(conn)]
        assert names == ["first", "other"]
    finally:
        conn.execute("DROP INDEX bulk_rows_position_idx")
