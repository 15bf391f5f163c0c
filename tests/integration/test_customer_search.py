"""Text filters match substrings, case-insensitively and literally, whatever the text:
the pattern is a quoted literal in the statement (projections/customers.py `_pattern`),
so quotes, backslashes and LIKE's wildcards must come out as plain characters, and a
gym's search must never reach another gym's customers."""

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.db import read_session_url
from projections.customers import CustomerFilter, count_query, list_query

ALPHABET = list("aB'\"\\%_ -;()*")
TEXT = st.text(st.sampled_from(ALPHABET), min_size=1, max_size=5)
NAMES = ["O'Brien", 'say "hi"', "back\\slash", "100%_sure", "a_b", "A%B", "--; DROP", "plain"]


@pytest.fixture(scope="module")
def gyms(stack: Any) -> Any:
    url = stack.create_database()
    mine, other = uuid4(), uuid4()
    now = datetime(2026, 12, 2, tzinfo=UTC)
    with psycopg.connect(url) as conn:
        for gym_id in (mine, other):
            for i, name in enumerate(NAMES):
                conn.execute(
                    "INSERT INTO customers (id, gym_id, version, first_name, last_name, email,"
                    " owner_active, created_at, updated_at)"
                    " VALUES (%s, %s, 1, %s, %s, %s, true, %s, %s)",
                    (uuid4(), gym_id, name, NAMES[-1 - i], f"m{i}+{name[:3]}@x.org", now, now),
                )
    yield url, mine
    stack.drop_database(url)


def matches(url: str, gym_id: UUID, column: str, text: str) -> list[tuple[Any, ...]]:
    field = "search" if column == "search_text" else column
    wanted = msgspec.structs.replace(CustomerFilter(limit=100), **{field: text})
    with psycopg.connect(read_session_url(url)) as conn:
        query, params = list_query(gym_id, wanted, date(2026, 12, 2))
        rows = conn.execute(query, params).fetchall()
        counted = conn.execute(*count_query(gym_id, wanted, date(2026, 12, 2))).fetchone()
    assert counted == (len(rows),)
    return rows


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=TEXT | st.sampled_from(NAMES),
    column=st.sampled_from(["search_text", "first_name", "last_name", "email"]),
)
def test_a_text_filter_finds_exactly_the_customers_containing_it(
    gyms: tuple[str, UUID], text: str, column: str
) -> None:
    url, gym_id = gyms
    with psycopg.connect(url) as conn:
        everyone = conn.execute(
            "SELECT id, first_name, last_name, email FROM customers WHERE gym_id = %s", (gym_id,)
        ).fetchall()

    def value(row: tuple[Any, ...]) -> str:
        first, last, email = row[1:]
        if column == "search_text":
            return f"{first} {last} {email}"
        return str({"first_name": first, "last_name": last, "email": email}[column])

    expected = {r[0] for r in everyone if text.lower() in value(r).lower()}
    found = matches(url, gym_id, column, text)
    assert {r[0] for r in found} == expected
    assert {r[1] for r in found} <= {gym_id}  # never another gym's customers
