"""Card codes and the front desk over HTTP: codes unique per gym, check-ins by id and by
card, denied ones recorded and listed, idempotent scans, a day in the gym's time zone."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from litestar.testing import TestClient

from infra.clock import ManualClock
from tests.conftest import bearer, signup_and_login, unique_email

API = "/api/v1"


@pytest.fixture
def owner(client: TestClient[Any]) -> dict[str, str]:
    _, token = signup_and_login(client)
    return bearer(token)


def customer(client: TestClient[Any], owner: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"first_name": "Ada", "last_name": "Lovelace", "email": unique_email(), **fields}
    response = client.post(f"{API}/customers", headers=owner, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def check_in(
    client: TestClient[Any], owner: dict[str, str], status: int = 201, **body: Any
) -> dict[str, Any]:
    response = client.post(f"{API}/check-ins", headers=owner, json=body)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_card_code_is_set_changed_cleared_and_unique_within_the_gym(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    ann = customer(client, owner, card_code="0004211733")
    assert ann["card_code"] == "0004211733"
    got = client.get(f"{API}/customers/{ann['id']}", headers=owner).json()
    assert got["card_code"] == "0004211733"

    taken = client.post(
        f"{API}/customers",
        headers=owner,
        json={
            "first_name": "B",
            "last_name": "C",
            "email": unique_email(),
            "card_code": "0004211733",
        },
    )
    assert taken.status_code == 409
    assert taken.json() == {
        "detail": "Card code already in use by another customer",
        "status_code": 409,
    }
    bob = customer(client, owner)
    refused = client.patch(
        f"{API}/customers/{bob['id']}", headers=owner, json={"card_code": "0004211733"}
    )
    assert refused.status_code == 409
    assert client.get(f"{API}/customers/{bob['id']}", headers=owner).json()["card_code"] is None

    # Another gym may use the same code.
    _, other_token = signup_and_login(client)
    customer(client, bearer(other_token), card_code="0004211733")

    moved = client.patch(f"{API}/customers/{ann['id']}", headers=owner, json={"card_code": "X-2"})
    assert (moved.status_code, moved.json()["card_code"]) == (200, "X-2")
    assert moved.headers["etag"] == '"2"'
    given = client.patch(
        f"{API}/customers/{bob['id']}", headers=owner, json={"card_code": "0004211733"}
    )
    assert given.status_code == 200  # freed by the move
    cleared = client.patch(f"{API}/customers/{ann['id']}", headers=owner, json={"card_code": None})
    assert (cleared.status_code, cleared.json()["card_code"]) == (200, None)
    customer(client, owner, card_code="X-2")  # freed by clearing it
    assert client.delete(f"{API}/customers/{bob['id']}", headers=owner).status_code == 204
    customer(client, owner, card_code="0004211733")  # freed by the removal


@pytest.mark.parametrize("code", ["", "has space", "x" * 65, "caf\u00e9", "tab\t"])
def test_a_card_code_out_of_its_pattern_is_422(
    client: TestClient[Any], owner: dict[str, str], code: str
) -> None:
    body = {"first_name": "A", "last_name": "B", "email": unique_email(), "card_code": code}
    response = client.post(f"{API}/customers", headers=owner, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "card_code"]


def test_check_in_by_id_and_by_card_and_denials_are_recorded_and_listed(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    member = customer(client, owner, card_code="M-1", membership_end="2099-12-31")
    lapsed = customer(client, owner, card_code="L-1", membership_end="2020-01-31")
    nobody = customer(client, owner)
    switched_off = customer(client, owner, active=False, membership_end="2099-12-31")

    by_id = check_in(client, owner, customer_id=member["id"])
    assert set(by_id) == {"id", "customer_id", "at", "allowed", "reason"}
    assert (by_id["customer_id"], by_id["allowed"], by_id["reason"]) == (member["id"], True, None)
    assert datetime.fromisoformat(by_id["at"]).tzinfo is not None
    by_card = check_in(client, owner, card_code="M-1")
    assert (by_card["customer_id"], by_card["allowed"]) == (member["id"], True)
    assert check_in(client, owner, card_code="L-1")["reason"] == "expired"
    assert check_in(client, owner, customer_id=nobody["id"])["reason"] == "no_membership"
    assert check_in(client, owner, customer_id=switched_off["id"])["reason"] == "inactive"

    # Read-your-writes: today's list shows every one of them at once, newest first.
    day = client.get(f"{API}/check-ins", headers=owner)
    assert day.status_code == 200
    assert day.headers["x-total-count"] == "5"
    listed = day.json()
    assert [c["id"] for c in listed][-2:] == [by_card["id"], by_id["id"]]
    assert listed[-1] == by_id
    denied = client.get(f"{API}/check-ins", headers=owner, params={"allowed": "false"})
    assert denied.headers["x-total-count"] == "3"
    assert {c["reason"] for c in denied.json()} == {"expired", "no_membership", "inactive"}
    allowed = client.get(
        f"{API}/check-ins", headers=owner, params={"allowed": "true", "limit": 1, "offset": 1}
    )
    assert (allowed.headers["x-total-count"], allowed.json()) == ("2", [by_id])

    mine = client.get(f"{API}/customers/{member['id']}/check-ins", headers=owner)
    assert mine.status_code == 200
    assert (mine.headers["x-total-count"], mine.json()) == ("2", [by_card, by_id])
    theirs = client.get(f"{API}/customers/{lapsed['id']}/check-ins", headers=owner).json()
    assert [c["reason"] for c in theirs] == ["expired"]


def test_an_unknown_card_and_other_gyms_customers_are_404(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    _, other_token = signup_and_login(client)
    other = bearer(other_token)
    theirs = customer(client, other, card_code="T-1", membership_end="2099-12-31")
    before = client.get(f"{API}/check-ins", headers=owner).headers["x-total-count"]
    assert check_in(client, owner, 404, card_code="T-1")["detail"] == "Card not found"
    assert check_in(client, owner, 404, card_code="NOPE")["status_code"] == 404
    assert check_in(client, owner, 404, customer_id=theirs["id"])["detail"] == "Customer not found"
    assert check_in(client, owner, 404, customer_id=str(uuid4()))["status_code"] == 404
    removed = customer(client, owner, card_code="R-1")
    client.delete(f"{API}/customers/{removed['id']}", headers=owner)
    check_in(client, owner, 404, customer_id=removed["id"])
    check_in(client, owner, 404, card_code="R-1")
    assert client.get(f"{API}/check-ins", headers=owner).headers["x-total-count"] == before
    listed = client.get(f"{API}/customers/{theirs['id']}/check-ins", headers=owner)
    assert listed.status_code == 404
    # Their own desk sees theirs.
    assert check_in(client, other, card_code="T-1")["allowed"] is True


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"customer_id": str(uuid4()), "card_code": "M-1"},
        {"customer_id": None},
        {"card_code": None},
        {"card_code": "two words"},
        {"card_code": "nul\u0000"},
        {"customer_id": "not-a-uuid"},
    ],
)
def test_a_check_in_names_exactly_one_customer_or_is_422(
    client: TestClient[Any], owner: dict[str, str], body: dict[str, Any]
) -> None:
    response = client.post(f"{API}/check-ins", headers=owner, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"


@pytest.mark.parametrize(
    "query",
    [{"on": "2026-13-01"}, {"on": "yesterday"}, {"on": "null"}, {"allowed": "1"}, {"limit": "0"}],
)
def test_bad_list_queries_are_422(
    client: TestClient[Any], owner: dict[str, str], query: dict[str, str]
) -> None:
    assert client.get(f"{API}/check-ins", headers=owner, params=query).status_code == 422


def test_a_repeated_scan_with_its_idempotency_key_is_one_check_in(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    customer(client, owner, card_code="K-1", membership_end="2099-12-31")
    scan = {**owner, "Idempotency-Key": "desk-1-scan-42"}
    first = client.post(f"{API}/check-ins", headers=scan, json={"card_code": "K-1"})
    again = client.post(f"{API}/check-ins", headers=scan, json={"card_code": "K-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    other_body = client.post(f"{API}/check-ins", headers=scan, json={"card_code": "K-2"})
    assert other_body.status_code == 422
    assert other_body.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert client.get(f"{API}/check-ins", headers=owner).headers["x-total-count"] == "1"


def test_auditors_read_the_lists_and_cannot_check_in(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    member = customer(client, owner, membership_end="2099-12-31")
    check_in(client, owner, customer_id=member["id"])
    granted = client.post(
        f"{API}/auth/auditor-tokens", headers=owner, json={"expires_in_seconds": 600}
    )
    assert granted.status_code == 201, granted.text
    auditor = bearer(granted.json()["access_token"])
    refused = client.post(f"{API}/check-ins", headers=auditor, json={"customer_id": member["id"]})
    assert refused.status_code == 403
    assert client.get(f"{API}/check-ins", headers=auditor).headers["x-total-count"] == "1"
    listed = client.get(f"{API}/customers/{member['id']}/check-ins", headers=auditor)
    assert listed.status_code == 200
    assert client.post(f"{API}/check-ins", json={"customer_id": member["id"]}).status_code == 401


def test_the_day_list_follows_the_gyms_time_zone_around_midnight(
    moved_client: TestClient[Any], clock: ManualClock
) -> None:
    """New York, on the night daylight saving ends (2030-11-03 is 25 hours long)."""
    client = moved_client
    _, token = signup_and_login(client, timezone="America/New_York")
    owner = bearer(token)
    member = customer(client, owner, membership_end="2099-12-31")

    def scan_at(moment: datetime) -> dict[str, Any]:
        clock.set(moment)
        return check_in(client, owner, customer_id=member["id"])

    # 23:59 on Nov 2 (EDT, UTC-4), then 00:01 and 23:59 on Nov 3 (EST after 02:00).
    late = scan_at(datetime(2030, 11, 3, 3, 59, tzinfo=UTC))
    early = scan_at(datetime(2030, 11, 3, 4, 1, tzinfo=UTC))
    last = scan_at(datetime(2030, 11, 4, 4, 59, tzinfo=UTC))
    next_day = scan_at(datetime(2030, 11, 4, 5, 0, tzinfo=UTC))

    def day(on: str | None = None) -> list[str]:
        params = {} if on is None else {"on": on}
        response = client.get(f"{API}/check-ins", headers=owner, params=params)
        assert response.status_code == 200, response.text
        assert response.headers["x-total-count"] == str(len(response.json()))
        return [c["id"] for c in response.json()]

    assert day("2030-11-02") == [late["id"]]
    assert day("2030-11-03") == [last["id"], early["id"]]
    assert day("2030-11-04") == [next_day["id"]]
    assert day() == [next_day["id"]]  # today, by the gym's clock: Nov 4 00:00 EST
    clock.set(datetime(2030, 11, 4, 4, 30, tzinfo=UTC))  # still Nov 3 in New York
    assert day() == [last["id"], early["id"]]
    assert day("0001-01-01") == []
    assert day("9999-12-31") == []
    assert datetime.fromisoformat(last["at"]) == datetime(2030, 11, 4, 4, 59, tzinfo=UTC)


def test_the_customer_shows_their_last_visit_and_visits_of_the_last_30_days(
    moved_client: TestClient[Any], clock: ManualClock
) -> None:
    client = moved_client
    _, token = signup_and_login(client)
    owner = bearer(token)
    member = customer(client, owner, membership_end="2099-12-31")
    assert (member["last_check_in_at"], member["check_ins_last_30_days"]) == (None, 0)
    start = clock.now()
    for days in (0, 3, 35):
        clock.set(start + timedelta(days=days))
        check_in(client, owner, customer_id=member["id"])
    client.patch(f"{API}/customers/{member['id']}", headers=owner, json={"active": False})
    denied = check_in(client, owner, customer_id=member["id"])  # not a visit
    assert denied["reason"] == "inactive"

    shown = client.get(f"{API}/customers/{member['id']}", headers=owner).json()
    last_visit = start + timedelta(days=35)
    assert datetime.fromisoformat(shown["last_check_in_at"]) == last_visit
    assert shown["check_ins_last_30_days"] == 1  # days 0 and 3 are more than 30 days ago
    listed = client.get(f"{API}/customers", headers=owner).json()
    assert listed[0]["check_ins_last_30_days"] == shown["check_ins_last_30_days"]
    # As of day 12, rebuilt from the log: the visits recorded by then.
    then = client.get(
        f"{API}/customers/{member['id']}",
        headers=owner,
        params={"as_of": (start + timedelta(days=12)).isoformat()},
    ).json()
    assert then["check_ins_last_30_days"] == 2
    assert datetime.fromisoformat(then["last_check_in_at"]) == start + timedelta(days=3)


def test_replay_verify_rebuilds_check_ins_and_card_codes_exactly(
    client: TestClient[Any], owner: dict[str, str], settings: Any
) -> None:
    from projections.rebuild import READ_TABLES, replay_and_compare

    member = customer(client, owner, card_code="V-1", membership_end="2099-12-31")
    check_in(client, owner, card_code="V-1")
    check_in(client, owner, customer_id=customer(client, owner)["id"])
    gone = customer(client, owner, card_code="V-2")
    check_in(client, owner, customer_id=gone["id"])
    client.delete(f"{API}/customers/{gone['id']}", headers=owner)
    client.patch(f"{API}/customers/{member['id']}", headers=owner, json={"card_code": "V-3"})
    assert "check_ins" in READ_TABLES
    events, found = replay_and_compare(settings.database_url)
    assert events > 0
    assert found == {}
