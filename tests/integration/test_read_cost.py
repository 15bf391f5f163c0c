"""Round trips per read: a customer who holds no membership and has no visits is one
query, read by id, in a list or in the answer to a change (issue 14: as few round
trips as the data allows)."""

from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from tests.conftest import bearer, signup_and_login, unique_email

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
