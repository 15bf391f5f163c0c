"""Listing stays index-driven on a large gym (100,000 customers beside 200,000 others)."""

import re
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql

from infra.db import read_session_url
from projections.customers import CustomerFilter, count_query, list_query

BIG_GYM = 100_000
OTHERS = 200_000


@pytest.fixture(scope="module")
def big_gym(stack: Any) -> Any:
    url = stack.create_database()
    gym_id = uuid4()
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO customers (id, gym_id, version, first_name, last_name, email,"
            " date_of_birth, membership_end, owner_active, created_at, updated_at)"
            " SELECT gen_random_uuid(), CASE WHEN i <= %s THEN %s::uuid"
            "   ELSE ('00000000-0000-4000-8000-' || lpad((i %% 500)::text, 12, '0'))::uuid END,"
            " 1, 'First' || i, 'Last' || (i::bigint * 7919 %% 100003),"
            " 'member' || i || '@example.com',"
            " date '1950-01-01' + (i %% 20000), date '2026-01-01' + (i %% 900) - 450,"
            " i %% 10 <> 0, now() - make_interval(secs => i), now()"
            " FROM generate_series(1, %s) AS i",
            (BIG_GYM, gym_id, BIG_GYM + OTHERS),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE customers")  # what autovacuum does in production
    yield url, gym_id
    stack.drop_database(url)


def plan(url: str, query: str, params: dict[str, Any]) -> str:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"EXPLAIN {query}", params).fetchall()
    return "\n".join(r[0] for r in rows)


TODAY = date(2026, 6, 1)
FILTERS = {
    "plain page": CustomerFilter(),
    "deep page": CustomerFilter(offset=5_000),
    "search": CustomerFilter(search="member4242"),
    "first_name": CustomerFilter(first_name="first777"),
    "last_name": CustomerFilter(last_name="last1234"),
    "active": CustomerFilter(active=True),
    "inactive": CustomerFilter(active=False),
    "age range": CustomerFilter(min_age=46, max_age=46),
    "search and active": CustomerFilter(search="example", active=True, limit=200),
}


@pytest.mark.parametrize("name", FILTERS)
def test_list_queries_use_indexes(big_gym: tuple[str, UUID], name: str) -> None:
    url, gym_id = big_gym
    for build in (list_query, count_query):
        query, params = build(gym_id, FILTERS[name], TODAY)
        explained = plan(url, query, params)
        assert "Seq Scan on customers" not in explained, f"{name}:\n{explained}"
        assert "customers_" in explained or "Index" in explained, explained


def generic_plan(url: str, query: str, params: dict[str, Any]) -> str:
    """The plan the API runs `query` on: prepared by psycopg as its reads are, in a
    session set up as its read pool's (generic plans, infra/db.py)."""
    with psycopg.connect(read_session_url(url)) as conn:
        # JIT compiling would show in the plan whatever it costs (see below)
        conn.execute("SET jit_above_cost = 0")
        conn.execute(query, params, prepare=True)
        (name,) = conn.execute("SELECT name FROM pg_prepared_statements").fetchone() or ("",)
        # psycopg numbers the parameters in the order their names first appear
        names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", query)))
        values = ", ".join(sql.Literal(params[n]).as_string(conn) for n in names)
        rows = conn.execute(f"EXPLAIN EXECUTE {name}({values})").fetchall()
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize("name", FILTERS)
def test_the_plans_the_api_runs_use_indexes_and_compile_nothing(
    big_gym: tuple[str, UUID], name: str
) -> None:
    url, gym_id = big_gym
    for build in (list_query, count_query):
        query, params = build(gym_id, FILTERS[name], TODAY)
        explained = generic_plan(url, query, params)
        assert "Seq Scan on customers" not in explained, f"{name}:\n{explained}"
        # A generic plan's cost assumes any LIMIT, which can pass jit_above_cost on a
        # large gym (each page then compiled for 18 ms): no read may compile.
        assert "JIT" not in explained, f"{name}:\n{explained}"
    if FILTERS[name].min_age is not None:  # a page of an age band walks the list's order
        query, params = list_query(gym_id, FILTERS[name], TODAY)
        assert "Sort" not in generic_plan(url, query, params)
