"""The memberships REST contract: selling, the lifecycle commands, the lists, the
term arithmetic of the issue, preconditions, keys, who may do what, and what the
customer response shows for a customer who holds memberships."""

import json
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from litestar.testing import TestClient

from domain import idempotency
from domain.events import SYSTEM_ACTOR
from projections.rebuild import blue_green_rebuild, replay_and_compare
from tests.conftest import bearer, signup_and_login
from tests.integration.helpers import head_position, wait_projected
from tests.integration.test_api_customers import create as create_customer
from tests.integration.test_api_plans import create_plan
from tests.integration.test_audit_api import auditor_for

API = "/api/v1"
FIELDS = {
    "id",
    "customer_id",
    "plan_id",
    "plan_name",
    "starts_on",
    "ends_on",
    "price_cents",
    "currency",
    "status",
    "freezes",
    "cancelled_on",
}


@pytest.fixture
def owner(client: TestClient[Any]) -> dict[str, str]:
    _, token = signup_and_login(client)
    return bearer(token)


def sell(
    client: TestClient[Any],
    owner: dict[str, str],
    customer_id: str,
    plan_id: str,
    starts_on: str,
    status: int = 201,
) -> dict[str, Any]:
    response = client.post(
        f"{API}/customers/{customer_id}/memberships",
        headers=owner,
        json={"plan_id": plan_id, "starts_on": starts_on},
    )
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def command(
    client: TestClient[Any],
    headers: dict[str, str],
    membership_id: str,
    name: str,
    body: dict[str, Any] | None = None,
) -> Any:
    url = f"{API}/memberships/{membership_id}/{name}"
    return (
        client.post(url, headers=headers, json=body)
        if body is not None
        else client.post(url, headers=headers)
    )


def test_the_term_arithmetic_of_the_issue(client: TestClient[Any], owner: dict[str, str]) -> None:
    """The issue's dates; the scheduler may record their expiry meanwhile (versions move)."""
    customer = create_customer(client, owner)["id"]
    month = create_plan(client, owner, max_freeze_days=10)["id"]
    thirty = create_plan(client, owner, term={"days": 30})["id"]
    assert sell(client, owner, customer, month, "2026-01-15")["ends_on"] == "2026-02-14"
    assert sell(client, owner, customer, thirty, "2026-01-01")["ends_on"] == "2026-01-30"
    assert sell(client, owner, customer, month, "2026-01-31")["ends_on"] == "2026-02-27"
    march = sell(client, owner, customer, month, "2026-03-01")
    assert march["ends_on"] == "2026-03-31"
    renewed = command(client, owner, march["id"], "renew")
    assert (renewed.status_code, renewed.json()["ends_on"]) == (200, "2026-04-30")
    # A freeze from the 1st to the 7th adds 7 days; unfreezing on the 4th gives 4 back.
    april = sell(client, owner, customer, month, "2026-04-01")
    frozen = command(
        client, owner, april["id"], "freeze", {"starts_on": "2026-04-01", "ends_on": "2026-04-07"}
    )
    assert (frozen.status_code, frozen.json()["ends_on"]) == (200, "2026-05-07")
    assert frozen.json()["freezes"] == [
        {"starts_on": "2026-04-01", "ends_on": "2026-04-07", "reason": None}
    ]
    thawed = command(client, owner, april["id"], "unfreeze", {"on": "2026-04-04"})
    assert (thawed.status_code, thawed.json()["ends_on"]) == (200, "2026-05-03")
    assert thawed.json()["freezes"] == [
        {"starts_on": "2026-04-01", "ends_on": "2026-04-03", "reason": None}
    ]


def test_a_sale_and_its_reads(client: TestClient[Any], owner: dict[str, str]) -> None:
    today = date.today()
    customer = create_customer(client, owner)["id"]
    plan = create_plan(client, owner)
    sold = sell(client, owner, customer, plan["id"], str(today))
    assert set(sold) == FIELDS
    assert (sold["status"], sold["plan_name"], sold["price_cents"], sold["currency"]) == (
        "active",
        "Monthly",
        3900,
        "EUR",
    )
    assert (sold["customer_id"], sold["freezes"], sold["cancelled_on"]) == (customer, [], None)
    got = client.get(f"{API}/memberships/{sold['id']}", headers=owner)
    assert (got.status_code, got.json(), got.headers["etag"]) == (200, sold, '"1"')
    later = sell(client, owner, customer, plan["id"], str(today + timedelta(days=40)))
    assert later["status"] == "upcoming"
    listed = client.get(f"{API}/customers/{customer}/memberships", headers=owner).json()
    assert [m["id"] for m in listed] == [later["id"], sold["id"]]  # newest sale first
    # A plan changed after the sale leaves what was sold alone.
    client.patch(f"{API}/plans/{plan['id']}", headers=owner, json={"price_cents": 1, "name": "New"})
    again = client.get(f"{API}/memberships/{sold['id']}", headers=owner).json()
    assert (again["price_cents"], again["plan_name"]) == (3900, "Monthly")


def test_the_gym_list_filters_pages_and_counts(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    today = date.today()
    customer = create_customer(client, owner)["id"]
    plan = create_plan(client, owner, term={"days": 10})["id"]
    soon = sell(client, owner, customer, plan, str(today - timedelta(days=5)))  # ends in 4 days
    later = sell(client, owner, customer, plan, str(today))  # ends in 9 days
    upcoming = sell(client, owner, customer, plan, str(today + timedelta(days=3)))
    gone = sell(client, owner, customer, plan, str(today - timedelta(days=30)))
    cancelled = sell(client, owner, customer, plan, str(today - timedelta(days=1)))
    command(client, owner, cancelled["id"], "cancel", {"effective_on": str(today)})

    def ids(**params: Any) -> tuple[list[str], str]:
        response = client.get(f"{API}/memberships", headers=owner, params=params)
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()], response.headers["x-total-count"]

    assert ids() == (
        [gone["id"], soon["id"], cancelled["id"], later["id"], upcoming["id"]],
        "5",
    )
    assert ids(status="active") == ([soon["id"], later["id"]], "2")
    assert ids(status="active", ends_before=str(today + timedelta(days=7))) == ([soon["id"]], "1")
    assert ids(status="expired") == ([gone["id"]], "1")
    assert ids(status="cancelled") == ([cancelled["id"]], "1")
    assert ids(status="upcoming") == ([upcoming["id"]], "1")
    assert ids(status="frozen") == ([], "0")
    assert ids(limit=2, offset=1) == ([soon["id"], cancelled["id"]], "5")
    for bad in (
        {"status": "sleeping"},
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
        {"ends_before": "soon"},
        {"ends_before": "null"},
        {"ends_before": "2026-02-30"},
    ):
        response = client.get(f"{API}/memberships", headers=owner, params=bad)
        assert response.status_code == 422, (bad, response.text)


def test_refusals_are_409(client: TestClient[Any], owner: dict[str, str]) -> None:
    customer = create_customer(client, owner)["id"]
    plan = create_plan(client, owner, max_freeze_days=7)["id"]
    sold = sell(client, owner, customer, plan, "2099-03-01")["id"]
    week = {"starts_on": "2099-03-01", "ends_on": "2099-03-07"}
    assert command(client, owner, sold, "freeze", week).status_code == 200
    overlap = {"starts_on": "2099-03-07", "ends_on": "2099-03-07"}
    over_limit = {"starts_on": "2099-03-20", "ends_on": "2099-03-20"}
    outside = {"starts_on": "2099-06-01", "ends_on": "2099-06-01"}
    for body in (overlap, over_limit, outside):
        response = command(client, owner, sold, "freeze", body)
        assert response.status_code == 409, (body, response.text)
    assert command(client, owner, sold, "unfreeze", {"on": "2099-03-20"}).status_code == 409
    cancel = {"effective_on": "2099-03-15", "reason": "moving away"}
    cancelled = command(client, owner, sold, "cancel", cancel)
    assert (cancelled.status_code, cancelled.json()["cancelled_on"]) == (200, "2099-03-15")
    assert command(client, owner, sold, "cancel", cancel).status_code == 409
    assert command(client, owner, sold, "renew").status_code == 409
    client.delete(f"{API}/plans/{plan}", headers=owner)
    refused = client.post(
        f"{API}/customers/{customer}/memberships",
        headers=owner,
        json={"plan_id": plan, "starts_on": "2099-03-01"},
    )
    assert refused.status_code == 409, refused.text


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("freeze", {"starts_on": "2099-03-07", "ends_on": "2099-03-01"}, "ends_on"),
        ("freeze", {"starts_on": "2099-03-07"}, "ends_on"),
        (
            "freeze",
            {"starts_on": "2099-03-01", "ends_on": "2099-03-02", "reason": "a\x00b"},
            "reason",
        ),
        ("unfreeze", {"on": "tomorrow"}, "on"),
        ("cancel", {}, "effective_on"),
        ("cancel", {"effective_on": "2099-03-01", "reason": "a\x00b"}, "reason"),
    ],
)
def test_invalid_commands_are_422_before_the_precondition(
    client: TestClient[Any], owner: dict[str, str], name: str, body: dict[str, Any], field: str
) -> None:
    customer = create_customer(client, owner)["id"]
    plan = create_plan(client, owner)["id"]
    sold = sell(client, owner, customer, plan, "2099-03-01")["id"]
    response = command(client, {**owner, "If-Match": '"9"'}, sold, name, body)
    assert response.status_code == 422, response.text
    assert field in str(response.json()["detail"])


def test_invalid_sales_are_422_or_404(client: TestClient[Any], owner: dict[str, str]) -> None:
    customer = create_customer(client, owner)["id"]
    plan = create_plan(client, owner)["id"]
    url = f"{API}/customers/{customer}/memberships"
    for body in (
        {"plan_id": plan},
        {"plan_id": "nope", "starts_on": "2026-01-01"},
        {"plan_id": plan, "starts_on": "01/02/2026"},
    ):
        assert client.post(url, headers=owner, json=body).status_code == 422, body
    unknown_plan = {"plan_id": customer, "starts_on": "2026-01-01"}  # a customer is no plan
    assert client.post(url, headers=owner, json=unknown_plan).status_code == 404
    nobody = f"{API}/customers/{plan}/memberships"
    assert (
        client.post(
            nobody, headers=owner, json={"plan_id": plan, "starts_on": "2026-01-01"}
        ).status_code
        == 404
    )
    assert client.get(nobody, headers=owner).status_code == 404


def test_if_match_and_etags(client: TestClient[Any], owner: dict[str, str]) -> None:
    customer = create_customer(client, owner)["id"]
    plan = create_plan(client, owner, max_freeze_days=7)["id"]
    sold = sell(client, owner, customer, plan, "2099-03-01")["id"]
    stale = command(client, {**owner, "If-Match": '"2"'}, sold, "renew")
    assert stale.status_code == 412
    assert client.get(f"{API}/memberships/{sold}", headers=owner).headers["etag"] == '"1"'
    renewed = command(client, {**owner, "If-Match": '"1"'}, sold, "renew")
    assert (renewed.status_code, renewed.headers["etag"]) == (200, '"2"')
    week = {"starts_on": "2099-04-02", "ends_on": "2099-04-03"}
    assert command(client, {**owner, "If-Match": '"1"'}, sold, "freeze", week).status_code == 412
    assert command(client, {**owner, "If-Match": "*"}, sold, "freeze", week).status_code == 200


def test_idempotency_keys(client: TestClient[Any], owner: dict[str, str]) -> None:
    customer = create_customer(client, owner)["id"]
    plan = create_plan(client, owner, max_freeze_days=7)["id"]
    keyed = {**owner, "Idempotency-Key": "sale-1"}
    url = f"{API}/customers/{customer}/memberships"
    body = {"plan_id": plan, "starts_on": "2099-03-01"}
    first = client.post(url, headers=keyed, json=body)
    again = client.post(url, headers=keyed, json=body)
    assert (first.status_code, again.status_code, again.json()) == (201, 201, first.json())
    assert len(client.get(url, headers=owner).json()) == 1
    other = client.post(url, headers=keyed, json={**body, "starts_on": "2099-03-02"})
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    sold = first.json()["id"]
    freeze_key = {**owner, "Idempotency-Key": "freeze-1"}
    week = {"starts_on": "2099-03-01", "ends_on": "2099-03-07"}
    frozen = command(client, freeze_key, sold, "freeze", week)
    command(client, owner, sold, "renew")
    retried = command(client, {**freeze_key, "If-Match": '"1"'}, sold, "freeze", week)
    assert (retried.status_code, retried.json(), retried.headers["etag"]) == (
        200,
        frozen.json(),
        '"2"',
    )
    assert (
        command(client, freeze_key, sold, "cancel", {"effective_on": "2099-03-09"}).status_code
        == 422
    )
    assert client.get(f"{API}/memberships/{sold}", headers=owner).headers["etag"] == '"3"'


def test_auditors_read_history_and_the_past_but_never_write(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    customer = create_customer(client, owner)["id"]
    plan = create_plan(client, owner, max_freeze_days=7)["id"]
    sold = sell(client, owner, customer, plan, "2099-03-01")
    command(client, owner, sold["id"], "renew")
    auditor = auditor_for(client, owner)
    url = f"{API}/memberships/{sold['id']}"
    assert client.get(url, headers=auditor).status_code == 200
    assert client.get(f"{API}/memberships", headers=auditor).status_code == 200
    assert client.get(f"{API}/customers/{customer}/memberships", headers=auditor).status_code == 200
    history = client.get(f"{url}/history", headers=auditor).json()
    assert [e["type"] for e in history] == ["MembershipSold", "MembershipRenewed"]
    assert history[1]["data"]["ends_on"] == "2099-04-30"
    then = client.get(url, headers=auditor, params={"version": 1})
    assert (then.status_code, then.json()["ends_on"], then.headers["etag"]) == (
        200,
        "2099-03-31",
        '"1"',
    )
    as_of = client.get(url, headers=auditor, params={"as_of": history[0]["recorded_at"]})
    assert as_of.json()["ends_on"] == "2099-03-31"
    before = client.get(url, headers=auditor, params={"as_of": "2000-01-01T00:00:00Z"})
    assert before.status_code == 404
    for response in (
        client.post(
            f"{API}/customers/{customer}/memberships",
            headers=auditor,
            json={"plan_id": plan, "starts_on": "2099-03-01"},
        ),
        command(
            client,
            auditor,
            sold["id"],
            "freeze",
            {"starts_on": "2099-04-01", "ends_on": "2099-04-01"},
        ),
        command(client, auditor, sold["id"], "unfreeze", {"on": "2099-04-01"}),
        command(client, auditor, sold["id"], "renew"),
        command(client, auditor, sold["id"], "cancel", {"effective_on": "2099-04-01"}),
    ):
        assert response.status_code == 403
    assert client.get(url, headers=owner).headers["etag"] == '"2"'


def test_another_gym_s_memberships_are_404(client: TestClient[Any], owner: dict[str, str]) -> None:
    customer = create_customer(client, owner)["id"]
    plan = create_plan(client, owner)["id"]
    sold = sell(client, owner, customer, plan, "2099-03-01")["id"]
    _, token = signup_and_login(client)
    other = bearer(token)
    their_customer = create_customer(client, other)["id"]
    their_plan = create_plan(client, other)["id"]
    url = f"{API}/memberships/{sold}"
    for response in (
        client.get(url, headers=other),
        client.get(url, headers=other, params={"version": 1}),
        client.get(f"{url}/history", headers=other),
        client.get(f"{API}/customers/{customer}/memberships", headers=other),
        client.post(
            f"{API}/customers/{customer}/memberships",
            headers=other,
            json={"plan_id": their_plan, "starts_on": "2099-03-01"},
        ),
        client.post(
            f"{API}/customers/{their_customer}/memberships",
            headers=other,
            json={"plan_id": plan, "starts_on": "2099-03-01"},
        ),
        command(
            client, other, sold, "freeze", {"starts_on": "2099-03-02", "ends_on": "2099-03-02"}
        ),
        command(client, other, sold, "unfreeze", {"on": "2099-03-02"}),
        command(client, other, sold, "renew"),
        command(client, other, sold, "cancel", {"effective_on": "2099-03-02"}),
    ):
        assert response.status_code == 404, response.text
    assert client.get(f"{API}/memberships", headers=other).headers["x-total-count"] == "0"
    assert client.get(url, headers=owner).headers["etag"] == '"1"'


def test_a_removed_customer_s_memberships_leave_the_read_side(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    customer = create_customer(client, owner)["id"]
    plan = create_plan(client, owner)["id"]
    sold = sell(client, owner, customer, plan, "2099-03-01")["id"]
    assert client.delete(f"{API}/customers/{customer}", headers=owner).status_code == 204
    assert client.get(f"{API}/memberships/{sold}", headers=owner).status_code == 404
    assert command(client, owner, sold, "renew").status_code == 404
    assert client.get(f"{API}/memberships/{sold}/history", headers=owner).status_code == 200


def test_the_customer_follows_the_membership_that_gives_access(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    today = date.today()
    legacy = create_customer(
        client,
        owner,
        membership_start=str(today - timedelta(days=400)),
        membership_end=str(today - timedelta(days=35)),
    )
    assert legacy["active"] is False  # no memberships: the stored dates, as before
    month = create_plan(client, owner)["id"]
    year = create_plan(client, owner, term={"months": 12})["id"]
    customer = legacy["id"]
    url = f"{API}/customers/{customer}"

    def shown() -> tuple[bool, str, str]:
        body = client.get(url, headers=owner).json()
        return body["active"], body["membership_start"], body["membership_end"]

    upcoming = sell(client, owner, customer, year, str(today + timedelta(days=10)))
    start = upcoming["starts_on"]
    assert shown() == (False, start, upcoming["ends_on"])  # none gives access: the latest
    current = sell(client, owner, customer, month, str(today - timedelta(days=3)))
    assert shown() == (True, current["starts_on"], current["ends_on"])
    listed = client.get(f"{API}/customers", headers=owner, params={"active": "true"}).json()
    assert customer in [c["id"] for c in listed]
    today_only = {"starts_on": str(today), "ends_on": str(today)}
    assert command(client, owner, current["id"], "freeze", today_only).status_code == 200
    # Frozen today: nothing gives access, so the latest (the upcoming one) shows.
    assert shown() == (False, start, upcoming["ends_on"])
    assert command(client, owner, current["id"], "unfreeze", {"on": str(today)}).status_code == 200
    assert shown() == (True, current["starts_on"], current["ends_on"])
    cancel = command(client, owner, current["id"], "cancel", {"effective_on": str(today)})
    assert cancel.status_code == 200
    # Cancelled from today: the latest shows again.
    assert shown() == (False, start, upcoming["ends_on"])
    inactive = client.get(f"{API}/customers", headers=owner, params={"active": "false"}).json()
    assert customer in [c["id"] for c in inactive]
    # The owner's switch still counts.
    client.patch(url, headers=owner, json={"active": False})
    assert shown()[0] is False


def _tables(database_url: str) -> dict[str, set[tuple[Any, ...]]]:
    with psycopg.connect(database_url) as conn:
        return {
            table: set(conn.execute(f"SELECT * FROM {table}").fetchall())  # noqa: S608 - constant
            for table in ("plans", "memberships", "membership_freezes")
        }


def test_replay_verify_and_a_blue_green_rebuild_cover_plans_and_memberships(
    client: TestClient[Any], owner: dict[str, str], settings: Any
) -> None:
    customer = create_customer(client, owner)["id"]
    leaving = create_customer(client, owner)["id"]
    plan = create_plan(client, owner, max_freeze_days=9)["id"]
    sold = sell(client, owner, customer, plan, "2099-03-01")["id"]
    sell(client, owner, leaving, plan, "2099-03-01")
    command(client, owner, sold, "freeze", {"starts_on": "2099-03-02", "ends_on": "2099-03-05"})
    command(client, owner, sold, "freeze", {"starts_on": "2099-03-10", "ends_on": "2099-03-12"})
    command(client, owner, sold, "unfreeze", {"on": "2099-03-11"})
    command(client, owner, sold, "renew")
    command(client, owner, sold, "cancel", {"effective_on": "2099-04-20", "reason": "moved"})
    client.patch(f"{API}/plans/{plan}", headers=owner, json={"term": {"days": 20}})
    client.delete(f"{API}/customers/{leaving}", headers=owner)
    events, found = replay_and_compare(settings.database_url)
    assert events > 0
    assert found == {}
    before = _tables(settings.database_url)
    assert any(row[0] == UUID(sold) for row in before["memberships"])
    blue_green_rebuild(settings.database_url)
    wait_projected(settings.database_url, head_position(settings.database_url))
    after = _tables(settings.database_url)
    assert {t: rows >= before[t] for t, rows in after.items()} == dict.fromkeys(before, True)
    assert client.get(f"{API}/memberships/{sold}", headers=owner).status_code == 200


def test_a_customer_s_past_shows_the_memberships_of_then(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    today = date.today()
    legacy_end = str(today + timedelta(days=100))
    customer = create_customer(client, owner, membership_end=legacy_end)["id"]
    plan = create_plan(client, owner)["id"]
    url = f"{API}/customers/{customer}"
    before = client.get(url, headers=owner, params={"version": 1}).json()
    sold = sell(client, owner, customer, plan, str(today - timedelta(days=40)))
    history = client.get(f"{API}/memberships/{sold['id']}/history", headers=owner).json()
    # At version 1 (recorded before the sale) the customer held no membership yet.
    assert client.get(url, headers=owner, params={"version": 1}).json() == before
    assert before["membership_end"] == legacy_end
    then = client.get(url, headers=owner, params={"as_of": history[0]["recorded_at"]}).json()
    assert (then["membership_end"], then["active"]) == (sold["ends_on"], False)  # expired
    assert client.get(url, headers=owner).json()["membership_end"] == sold["ends_on"]


def test_every_id_that_is_not_one_of_the_gym_s_own_is_404_and_stores_nothing(
    client: TestClient[Any], owner: dict[str, str], settings: Any
) -> None:
    """Reads and writes of plans and memberships by every kind of foreign stream: the
    gym itself, a customer, its own key's stream, the other kind, another gym's."""
    me = client.get(f"{API}/gyms/me", headers=owner).json()["id"]
    customer = create_customer(client, owner)["id"]
    plan = client.post(
        f"{API}/plans",
        headers={**owner, "Idempotency-Key": "iso"},
        json={"name": "P", "price_cents": 1, "currency": "EUR", "term": {"days": 5}},
    ).json()["id"]
    sold = sell(client, owner, customer, plan, "2099-03-01")["id"]
    _, token = signup_and_login(client)
    other = bearer(token)
    their_plan = create_plan(client, other)["id"]
    their_sale = sell(client, other, create_customer(client, other)["id"], their_plan, "2099-03-01")
    foreign = [
        me,
        customer,
        str(idempotency.stream_id(me, "iso")),
        their_plan,
        their_sale["id"],
        str(uuid4()),
    ]
    before = head_position(settings.database_url)
    failures = []
    for stream in foreign:
        plan_ids, membership_ids = [stream, sold], [stream, plan]
        for url in [f"{API}/plans/{i}" for i in plan_ids if i != plan]:
            for response in (
                client.get(url, headers=owner),
                client.get(url, headers=owner, params={"version": 1}),
                client.get(f"{url}/history", headers=owner),
                client.patch(url, headers=owner, json={"name": "Mine"}),
                client.delete(url, headers={**owner, "If-Match": "*"}),
            ):
                if response.status_code != 404:
                    failures.append((url, response.status_code, response.text[:120]))
        for url in [f"{API}/memberships/{i}" for i in membership_ids if i != sold]:
            for response in (
                client.get(url, headers=owner),
                client.get(url, headers=owner, params={"as_of": "2100-01-01T00:00:00Z"}),
                client.get(f"{url}/history", headers=owner),
                client.post(f"{url}/renew", headers=owner),
                client.post(f"{url}/cancel", headers=owner, json={"effective_on": "2099-03-02"}),
            ):
                if response.status_code != 404:
                    failures.append((url, response.status_code, response.text[:120]))
    assert not failures, "\n".join(map(str, failures))
    assert _recorded_by_people(settings.database_url, before) == [], "a refused write stored"


def _recorded_by_people(database_url: str, after: int) -> list[str]:
    """Topics of the events after `after` that a request caused: the scheduler's own
    notes (expiries and reminders of the memberships sold here) are not refusals."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT topic, state FROM gymledger_events WHERE notification_id > %s", (after,)
        ).fetchall()
    return [
        str(topic)
        for topic, state in rows
        if json.loads(bytes(state))["metadata"]["actor"] != SYSTEM_ACTOR
    ]


def test_days_off_the_calendar_are_422_and_never_reach_the_log(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    """Found in review: a freeze and an unfreeze on 0001-01-01 were stored, and the
    projector then failed on the day before (every gym's read model stopped); a sale
    near 9999 answered 500."""
    customer = create_customer(client, owner)["id"]
    plan = create_plan(client, owner, max_freeze_days=5)["id"]
    for day in ("0001-01-01", "1899-12-31", "9001-01-01", "9999-12-15"):
        refused = sell(client, owner, customer, plan, day, status=422)
        assert refused["detail"][0]["loc"] == ["body", "starts_on"], refused
    sold = sell(client, owner, customer, plan, "2099-01-01")["id"]
    for name, body in (
        ("freeze", {"starts_on": "0001-01-01", "ends_on": "0001-01-01"}),
        ("unfreeze", {"on": "0001-01-01"}),
        ("cancel", {"effective_on": "0001-01-01"}),
    ):
        assert command(client, owner, sold, name, body).status_code == 422, name
    late = {"from": "9999-12-25", "to": "9999-12-31"}
    movements = client.get(f"{API}/reports/movements", headers=owner, params=late)
    assert (movements.status_code, movements.json()["sold"]) == (200, 0)
    assert client.get(f"{API}/memberships/{sold}", headers=owner).json()["freezes"] == []
