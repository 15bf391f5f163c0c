"""Round trips per read: a customer who holds no membership and has no visits is one
query, read by id, in a list or in the answer to a change (issue 14: as few round
trips as the data allows)."""

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from litestar.testing import TestClient

from tests.conftest import bearer, signup_and_login, unique_email
from tests.smtp import free_port

API = "/api/v1"


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements the API's async connections run while the test reads."""
    ran: list[str] = []
    execute = psycopg.AsyncCursor.execute

    async def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append(str(query))
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted)
    return ran


def test_a_customer_without_memberships_or_visits_is_one_query_when_shown_or_changed(
    client: TestClient[Any], statements: list[str]
) -> None:
    _, token = signup_and_login(client)
    owner = bearer(token)
    body = {"first_name": "Ada", "last_name": "Lovelace", "email": unique_email()}
    created = client.post(f"{API}/customers", headers=owner, json=body).json()
    client.get(f"{API}/customers", headers=owner)  # the gym's access is cached by now
    url = f"{API}/customers/{created['id']}"
    statements.clear()
    shown = client.get(url, headers=owner)
    assert shown.json() == created
    assert len(statements) == 1, statements
    assert "FROM customers" in statements[0]
    statements.clear()
    changed = client.patch(url, headers=owner, json={"notes": "likes mornings"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["notes"] == "likes mornings"
    assert len(statements) == 1, statements  # the write side's statements are not these


@pytest.fixture
def served(settings: Any, projector: None) -> Iterator[str]:
    """The API on a port of its own, in this process: requests to it run concurrently
    (Litestar's test clients handle one at a time)."""
    import threading

    import uvicorn

    from api.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}{API}"
    server.should_exit = True
    thread.join(10)


CONCURRENT = 3  # within the read pool of the tests' settings


async def lists_while_counting(
    served: str, monkeypatch: pytest.MonkeyPatch, first_count_fails: bool
) -> tuple[list[httpx.Response], list[object]]:
    """CONCURRENT lists of a gym of 3 customers, arriving while the first of them counts."""
    from projections.customers import count_customers as count
    from projections.customers import list_customers as listing

    counted: list[object] = []
    all_in = asyncio.Event()
    listed: list[object] = []

    async def slow_count(*args: Any) -> int:
        counted.append(args[2])
        with contextlib.suppress(TimeoutError):  # the scan outlasts the others' arrival
            await asyncio.wait_for(all_in.wait(), 5)
        if first_count_fails and len(counted) == 1:
            raise psycopg.OperationalError("the connection broke mid-count")
        return await count(*args)

    async def list_then_wait(*args: Any) -> Any:
        rows = await listing(*args)
        listed.append(args[2])
        if len(listed) == CONCURRENT:
            all_in.set()
        return rows

    async with httpx.AsyncClient(base_url=served, timeout=30) as client:
        signup = {
            "name": "Count Gym",
            "email": unique_email(),
            "password": "count pass phrase",
            "monthly_fee_cents": 0,
            "currency": "EUR",
        }
        assert (await client.post("/auth/signup", json=signup)).status_code == 201
        form = {"username": signup["email"], "password": signup["password"]}
        token = (await client.post("/auth/login", data=form)).json()["access_token"]
        owner = bearer(token)
        for i in range(3):
            body = {"first_name": "Ada", "last_name": f"L{i}", "email": unique_email()}
            assert (await client.post("/customers", headers=owner, json=body)).is_success
        monkeypatch.setattr("api.routes.customers.count_customers", slow_count)
        monkeypatch.setattr("api.routes.customers.list_customers", list_then_wait)
        page = {"limit": 1}
        answers = await asyncio.gather(
            *(client.get("/customers", headers=owner, params=page) for _ in range(CONCURRENT))
        )
    return answers, counted


async def test_concurrent_lists_count_their_matches_once(
    served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A count is cached per read-model position; the requests that miss it together
    (every list of a gym after any write, or a cold start) share one count instead of
    each scanning the gym: on a 100,000-customer gym, `active=true` scans for 160 ms."""
    answers, counted = await lists_while_counting(served, monkeypatch, first_count_fails=False)
    assert [a.status_code for a in answers] == [200] * CONCURRENT
    assert {a.headers["X-Total-Count"] for a in answers} == {"3"}
    assert len(counted) == 1


async def test_when_the_shared_count_fails_the_others_count_once_more(
    served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers, counted = await lists_while_counting(served, monkeypatch, first_count_fails=True)
    assert sorted(a.status_code for a in answers) == [200] * (CONCURRENT - 1) + [503]
    assert {a.headers["X-Total-Count"] for a in answers if a.status_code == 200} == {"3"}
    assert len(counted) == 2  # the failed count, and one more for both that waited
