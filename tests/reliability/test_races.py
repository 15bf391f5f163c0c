"""Races over HTTP: uniqueness, optimistic concurrency and idempotency under contention."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from litestar.testing import TestClient

from tests.conftest import bearer, signup_and_login, signup_body, unique_email
from tests.reliability.scale import size

API = "/api/v1"


def test_concurrent_signups_with_one_email_give_exactly_one_201(client: TestClient[Any]) -> None:
    contenders = size(10, 50)
    email = unique_email("race")
    bodies = [signup_body(email=email, name=f"Gym {i}") for i in range(contenders)]
    with ThreadPoolExecutor(contenders) as pool:
        codes = list(
            pool.map(lambda b: client.post(f"{API}/auth/signup", json=b).status_code, bodies)
        )
    assert codes.count(201) == 1
    assert codes.count(400) == contenders - 1


def test_concurrent_patches_with_if_match_have_one_winner_per_version(
    client: TestClient[Any], settings: Any
) -> None:
    writers = size(20, 100)
    _, token = signup_and_login(client)
    owner = bearer(token)
    created = client.post(
        f"{API}/customers",
        headers=owner,
        json={"first_name": "R", "last_name": "Ace", "email": unique_email()},
    )
    url = f"{API}/customers/{created.json()['id']}"

    def patch(i: int) -> tuple[int, str]:
        response = client.patch(url, headers={**owner, "If-Match": '"1"'}, json={"notes": f"w{i}"})
        return response.status_code, response.json().get("notes", "")

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(patch, range(writers)))
    winners = [notes for code, notes in outcomes if code == 200]
    assert len(winners) == 1
    assert sorted(code for code, _ in outcomes) == [200] + [412] * (writers - 1)
    final = client.get(url, headers=owner)
    assert final.headers["etag"] == '"2"'
    assert final.json()["notes"] == winners[0]  # the winner's write is the one kept
    with psycopg.connect(settings.database_url) as conn:
        count = conn.execute(
            "SELECT count(*) FROM gymledger_events WHERE originator_id = %s",
            (created.json()["id"],),
        ).fetchone()
    assert count == (2,)


def test_same_idempotency_key_sent_concurrently_records_one_event(
    client: TestClient[Any], settings: Any
) -> None:
    copies = size(10, 20)
    _, token = signup_and_login(client)
    headers = {**bearer(token), "Idempotency-Key": f"burst-{unique_email()}"}
    body = {"first_name": "Same", "last_name": "Key", "email": unique_email()}
    with ThreadPoolExecutor(copies) as pool:
        responses = list(
            pool.map(
                lambda _: client.post(f"{API}/customers", headers=headers, json=body), range(copies)
            )
        )
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    with psycopg.connect(settings.database_url) as conn:
        registered = conn.execute(
            "SELECT count(*) FROM gymledger_events WHERE topic LIKE 'CustomerRegistered.%%'"
            " AND convert_from(state, 'UTF8') LIKE %s",
            (f"%{body['email']}%",),
        ).fetchone()
    assert registered == (1,)
