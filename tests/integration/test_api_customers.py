"""The customers REST contract: every parameter, bound and status code."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from tests.conftest import bearer, signup_and_login, unique_email

API = "/api/v1"
FIELDS = {
    "id",
    "gym_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "active",
    "date_of_birth",
    "membership_start",
    "membership_end",
    "notes",
    "card_code",
    "created_at",
    "updated_at",
    "last_check_in_at",
    "check_ins_last_30_days",
}


def person(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"first_name": "Ada", "last_name": "Lovelace", "email": unique_email()}
    body.update(overrides)
    return body


@pytest.fixture
def owner(client: TestClient[Any]) -> dict[str, str]:
    _, token = signup_and_login(client)
    return bearer(token)


def create(client: TestClient[Any], owner: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post(f"{API}/customers", headers=owner, json=person(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def event_count(settings: Any, stream_id: str) -> int:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM gymledger_events WHERE originator_id = %s", (stream_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_create_returns_the_documented_shape(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    body = person(
        phone="+49 30 1234",
        date_of_birth="1990-02-03",
        membership_start="2026-01-01",
        membership_end="2099-12-31",
        notes="likes kettlebells",
    )
    response = client.post(f"{API}/customers", headers=owner, json=body)
    assert response.status_code == 201
    created = response.json()
    assert set(created) == FIELDS
    assert created["active"] is True
    assert created["date_of_birth"] == "1990-02-03"
    assert created["membership_end"] == "2099-12-31"
    # Read-your-writes: visible at once.
    got = client.get(f"{API}/customers/{created['id']}", headers=owner)
    assert got.status_code == 200
    assert got.json() == created
    assert got.headers["etag"] == '"1"'


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"first_name": ""}, "first_name"),
        ({"last_name": " "}, "last_name"),
        ({"email": "no-at-sign"}, "email"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"date_of_birth": "01/02/1990"}, "date_of_birth"),
        ({"membership_start": "2026-02-01", "membership_end": "2026-01-01"}, "membership_end"),
        ({"active": "yes"}, "active"),
    ],
)
def test_invalid_customers_are_422_and_store_nothing(
    client: TestClient[Any], owner: dict[str, str], overrides: dict[str, Any], field: str
) -> None:
    before = client.get(f"{API}/customers", headers=owner).headers["x-total-count"]
    response = client.post(f"{API}/customers", headers=owner, json=person(**overrides))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == field
    assert client.get(f"{API}/customers", headers=owner).headers["x-total-count"] == before


def test_missing_required_field_is_422(client: TestClient[Any], owner: dict[str, str]) -> None:
    response = client.post(f"{API}/customers", headers=owner, json={"first_name": "A"})
    assert response.status_code == 422


def test_list_filters_and_counts(client: TestClient[Any], owner: dict[str, str]) -> None:
    today = date.today()
    ada = create(
        client,
        owner,
        first_name="Ada",
        last_name="Lovelace",
        email="ada@engine.org",
        date_of_birth=str(today.replace(year=today.year - 30)),
    )
    grace = create(
        client,
        owner,
        first_name="Grace",
        last_name="Hopper",
        email="gh@navy.mil",
        date_of_birth=str(today.replace(year=today.year - 45)),
    )
    lapsed = create(
        client,
        owner,
        first_name="Alan",
        last_name="Turing",
        email="at@bletchley.uk",
        membership_end=str(today - timedelta(days=1)),
    )
    off = create(
        client, owner, first_name="Off", last_name="Switch", email="off@x.org", active=False
    )
    assert lapsed["active"] is False
    assert off["active"] is False

    def ids(query: str) -> list[str]:
        response = client.get(f"{API}/customers?{query}", headers=owner)
        assert response.status_code == 200, response.text
        assert int(response.headers["x-total-count"]) == len(response.json())
        return [c["id"] for c in response.json()]

    assert ids("") == [off["id"], lapsed["id"], grace["id"], ada["id"]]  # newest first
    assert ids("active=true") == [grace["id"], ada["id"]]
    assert ids("active=false") == [off["id"], lapsed["id"]]
    assert ids("search=LOVE") == [ada["id"]]
    assert ids("search=navy") == [grace["id"]]
    assert ids("search=%25") == []  # LIKE wildcards are literal
    assert ids("search=_") == []
    assert ids("first_name=gra") == [grace["id"]]
    assert ids("last_name=TURING") == [lapsed["id"]]
    assert ids("email=engine") == [ada["id"]]
    assert ids("first_name=lovelace") == []  # a last name is not a first name
    assert ids("min_age=30") == [grace["id"], ada["id"]]
    assert ids("min_age=31") == [grace["id"]]
    assert ids("max_age=30") == [ada["id"]]
    assert ids("max_age=29") == []
    assert ids("min_age=40&max_age=45") == [grace["id"]]
    assert ids("search=a&active=true&max_age=40") == [ada["id"]]


def test_paging_returns_every_customer_exactly_once(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    created = {create(client, owner, first_name=f"P{i}")["id"] for i in range(7)}
    seen: list[str] = []
    for offset in range(0, 9, 3):
        page = client.get(f"{API}/customers?limit=3&offset={offset}", headers=owner)
        assert page.headers["x-total-count"] == "7"
        seen += [c["id"] for c in page.json()]
    assert len(seen) == 7
    assert set(seen) == created


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "offset=-1",
        "min_age=-1",
        "max_age=-2",
        "limit=abc",
        "active=maybe",
        "offset=99999999999999999999",
    ],
)
def test_out_of_range_parameters_are_422(
    client: TestClient[Any], owner: dict[str, str], query: str
) -> None:
    response = client.get(f"{API}/customers?{query}", headers=owner)
    assert response.status_code == 422, response.text
    assert response.json()["status_code"] == 422


def test_min_age_above_max_age_is_400_naming_min_age(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    response = client.get(f"{API}/customers?min_age=50&max_age=20", headers=owner)
    assert response.status_code == 400
    assert "min_age" in response.json()["detail"]


def test_limits_are_inclusive(client: TestClient[Any], owner: dict[str, str]) -> None:
    for query in ("limit=1", "limit=200", "offset=0", "min_age=0&max_age=0"):
        assert client.get(f"{API}/customers?{query}", headers=owner).status_code == 200


def test_patch_with_etags(client: TestClient[Any], owner: dict[str, str], settings: Any) -> None:
    c = create(client, owner)
    url = f"{API}/customers/{c['id']}"
    changed = client.patch(url, headers={**owner, "If-Match": '"1"'}, json={"notes": "hi"})
    assert changed.status_code == 200
    assert changed.headers["etag"] == '"2"'
    assert changed.json()["notes"] == "hi"
    stale = client.patch(url, headers={**owner, "If-Match": '"1"'}, json={"notes": "lost"})
    assert stale.status_code == 412
    assert stale.json()["status_code"] == 412
    assert client.get(url, headers=owner).json()["notes"] == "hi"  # nothing written
    assert event_count(settings, c["id"]) == 2
    latest = client.patch(url, headers=owner, json={"active": False, "phone": "123"})
    assert latest.status_code == 200
    assert latest.json()["active"] is False
    assert latest.headers["etag"] == '"4"'  # details changed + deactivated
    weak = client.patch(url, headers={**owner, "If-Match": 'W/"4"'}, json={"active": True})
    assert weak.status_code == 200
    assert weak.json()["active"] is True
    assert client.patch(url, headers=owner, json={"email": "bad"}).status_code == 422
    assert client.patch(url, headers=owner, json={"first_name": None}).status_code == 422


def test_delete_with_etags_and_then_gone(client: TestClient[Any], owner: dict[str, str]) -> None:
    c = create(client, owner)
    url = f"{API}/customers/{c['id']}"
    assert client.delete(url, headers={**owner, "If-Match": '"7"'}).status_code == 412
    assert client.get(url, headers=owner).status_code == 200
    assert client.delete(url, headers={**owner, "If-Match": '"1"'}).status_code == 204
    for response in (
        client.get(url, headers=owner),
        client.patch(url, headers=owner, json={"notes": "x"}),
        client.delete(url, headers=owner),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "Customer not found", "status_code": 404}
    assert c["id"] not in [x["id"] for x in client.get(f"{API}/customers", headers=owner).json()]


def test_unknown_customer_is_404(client: TestClient[Any], owner: dict[str, str]) -> None:
    url = f"{API}/customers/00000000-0000-4000-8000-000000000000"
    for response in (
        client.get(url, headers=owner),
        client.patch(url, headers=owner, json={"notes": "x"}),
        client.delete(url, headers=owner),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == "Customer not found"


def test_another_gym_sees_nothing(
    client: TestClient[Any], owner: dict[str, str], settings: Any
) -> None:
    c = create(client, owner, first_name="Private")
    _, other_token = signup_and_login(client)
    other = bearer(other_token)
    url = f"{API}/customers/{c['id']}"
    for response in (
        client.get(url, headers=other),
        client.patch(url, headers=other, json={"notes": "mine now"}),
        client.delete(url, headers=other),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == "Customer not found"
    listed = client.get(f"{API}/customers?search=Private", headers=other)
    assert listed.json() == []
    assert listed.headers["x-total-count"] == "0"
    assert event_count(settings, c["id"]) == 1
    assert client.get(url, headers=owner).json()["notes"] is None


def test_every_customer_endpoint_requires_a_token(client: TestClient[Any]) -> None:
    url = f"{API}/customers/00000000-0000-4000-8000-000000000000"
    for response in (
        client.post(f"{API}/customers", json=person()),
        client.get(f"{API}/customers"),
        client.get(url),
        client.patch(url, json={}),
        client.delete(url),
    ):
        assert response.status_code == 401


def test_idempotency_key_replays_and_refuses_other_bodies(
    client: TestClient[Any], owner: dict[str, str], settings: Any
) -> None:
    body = person()
    headers = {**owner, "Idempotency-Key": "create-ada-1"}
    first = client.post(f"{API}/customers", headers=headers, json=body)
    client.patch(f"{API}/customers/{first.json()['id']}", headers=owner, json={"notes": "later"})
    again = client.post(f"{API}/customers", headers=headers, json=body)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    listed = client.get(f"{API}/customers?email={body['email']}", headers=owner)
    assert listed.headers["x-total-count"] == "1"
    different = client.post(f"{API}/customers", headers=headers, json={**body, "first_name": "Eve"})
    assert different.status_code == 422
    assert different.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    # Keys are per gym: another gym may use the same key for its own customer.
    _, other_token = signup_and_login(client)
    other = client.post(
        f"{API}/customers",
        headers={**bearer(other_token), "Idempotency-Key": "create-ada-1"},
        json=body,
    )
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]


def test_same_key_sent_concurrently_records_one_customer(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    body = person()
    headers = {**owner, "Idempotency-Key": "burst-1"}
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda _: client.post(f"{API}/customers", headers=headers, json=body), range(8)
            )
        )
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    listed = client.get(f"{API}/customers?email={body['email']}", headers=owner)
    assert listed.headers["x-total-count"] == "1"


def test_closing_the_gym_removes_its_customers_from_the_read_side(
    client: TestClient[Any], settings: Any
) -> None:
    _, token = signup_and_login(client)
    c = create(client, bearer(token))
    assert client.delete(f"{API}/gyms/me", headers=bearer(token)).status_code == 204
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT 1 FROM customers WHERE id = %s", (c["id"],)).fetchone() is None
    assert event_count(settings, c["id"]) == 1  # history stays in the log


def test_customer_gets_one_welcome_mail_naming_the_gym(client: TestClient[Any], inbox: Any) -> None:
    _, token = signup_and_login(client, name="Muscle Beach")
    c = create(client, bearer(token))
    mails = inbox.wait_for(c["email"])
    assert len(mails) == 1
    assert "Muscle Beach" in mails[0]["Subject"]
    assert "Muscle Beach" in mails[0].get_content()


def test_keyset_pages_follow_the_cursor_without_gaps_or_repeats(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    """`after=<X-Next-Cursor>` pages through the list as `offset` does, and stays
    exact when customers are added between pages (offset would repeat one)."""
    made = [create(client, owner, last_name=f"Page{i}")["id"] for i in range(5)]
    everyone = client.get(f"{API}/customers", headers=owner, params={"limit": 200}).json()
    expected = [c["id"] for c in everyone]
    assert expected[:5] == made[::-1]  # newest first
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    added = False
    while True:
        page = client.get(f"{API}/customers", headers=owner, params=params)
        assert page.status_code == 200
        assert page.headers["x-total-count"] == str(len(expected) + added)
        seen += [c["id"] for c in page.json()]
        cursor = page.headers.get("x-next-cursor")
        if cursor is None:
            break
        if not added:  # a newer customer lands between two pages
            create(client, owner, last_name="Late")
            added = True
        params = {"limit": 2, "after": cursor}
    assert seen == expected
    last = client.get(f"{API}/customers", headers=owner, params={"limit": 200})
    assert "x-next-cursor" not in last.headers  # fewer than `limit`: the end


def test_a_cursor_of_another_format_is_422_and_every_well_formed_one_is_taken(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    for bad in ("AAAA", "12.ABCDEF", "1." + "A" * 32, "x" * 40, "1234567890123456789." + "0" * 32):
        response = client.get(f"{API}/customers", headers=owner, params={"after": bad})
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"] == ["query", "after"]
    # Well formed, even past the years datetime holds: taken, as "after the newest".
    for good in ("0." + "0" * 32, "999999999999999999." + "f" * 32):
        response = client.get(f"{API}/customers", headers=owner, params={"after": good})
        assert response.status_code == 200, good
