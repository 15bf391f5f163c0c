"""The plans REST contract: create, list, read, change, retire; who may do what."""

from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import bearer, signup_and_login
from tests.integration.test_audit_api import auditor_for

API = "/api/v1"
PLAN_FIELDS = {"id", "name", "price_cents", "currency", "term", "max_freeze_days", "retired"}


def monthly(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Monthly",
        "price_cents": 3900,
        "currency": "eur",
        "term": {"months": 1},
        "max_freeze_days": 14,
    }
    body.update(overrides)
    return body


@pytest.fixture
def owner(client: TestClient[Any]) -> dict[str, str]:
    _, token = signup_and_login(client)
    return bearer(token)


def create_plan(client: TestClient[Any], owner: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post(f"{API}/plans", headers=owner, json=monthly(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_plan_is_created_read_changed_and_retired(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    created = create_plan(client, owner)
    assert set(created) == PLAN_FIELDS
    assert (created["currency"], created["term"], created["retired"]) == (
        "EUR",
        {"months": 1},
        False,
    )
    url = f"{API}/plans/{created['id']}"
    got = client.get(url, headers=owner)
    assert (got.status_code, got.json(), got.headers["etag"]) == (200, created, '"1"')
    days = create_plan(client, owner, name="Ten days", term={"days": 10})
    assert days["term"] == {"days": 10}

    stale = client.patch(url, headers={**owner, "If-Match": '"7"'}, json={"price_cents": 1})
    assert stale.status_code == 412
    changed = client.patch(url, headers={**owner, "If-Match": '"1"'}, json={"price_cents": 4500})
    assert (changed.status_code, changed.json()["price_cents"], changed.headers["etag"]) == (
        200,
        4500,
        '"2"',
    )
    assert client.delete(url, headers=owner).status_code == 204
    assert client.delete(url, headers=owner).status_code == 204  # retiring again: no change
    assert client.get(url, headers=owner).json()["retired"] is True
    listed = client.get(f"{API}/plans", headers=owner).json()
    assert {p["id"] for p in listed} == {created["id"], days["id"]}
    on_sale = client.get(f"{API}/plans", headers=owner, params={"retired": "false"}).json()
    assert [p["id"] for p in on_sale] == [days["id"]]
    # The plan's history and its first version, for auditors too.
    auditor = auditor_for(client, owner)
    history = client.get(f"{url}/history", headers=auditor).json()
    assert [e["type"] for e in history] == ["PlanCreated", "PlanChanged", "PlanRetired"]
    then = client.get(url, headers=auditor, params={"version": 1})
    assert (then.status_code, then.json(), then.headers["etag"]) == (200, created, '"1"')
    as_of = client.get(url, headers=auditor, params={"as_of": history[1]["recorded_at"]})
    assert as_of.json()["price_cents"] == 4500
    assert as_of.json()["retired"] is False


def test_max_freeze_days_defaults_to_zero(client: TestClient[Any], owner: dict[str, str]) -> None:
    body = monthly()
    del body["max_freeze_days"]
    response = client.post(f"{API}/plans", headers=owner, json=body)
    assert (response.status_code, response.json()["max_freeze_days"]) == (201, 0)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": " "}, "name"),
        ({"price_cents": -1}, "price_cents"),
        ({"currency": "EURO"}, "currency"),
        ({"term": {"months": 1, "days": 3}}, "term"),
        ({"term": {}}, "term"),
        ({"term": {"weeks": 2}}, "term"),
        ({"term": {"months": 0}}, "term"),
        ({"term": {"months": None}}, "term"),
        ({"max_freeze_days": -1}, "max_freeze_days"),
    ],
)
def test_invalid_plans_are_422(
    client: TestClient[Any], owner: dict[str, str], overrides: dict[str, Any], field: str
) -> None:
    response = client.post(f"{API}/plans", headers=owner, json=monthly(**overrides))
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"][0]["loc"]


def test_a_change_that_fails_on_its_own_is_422_before_412(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    url = f"{API}/plans/{create_plan(client, owner)['id']}"
    both = {"term": {"days": 1, "months": 1}}
    bad = client.patch(url, headers={**owner, "If-Match": '"9"'}, json=both)
    assert bad.status_code == 422


def test_plan_creation_honours_the_idempotency_key(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    keyed = {**owner, "Idempotency-Key": "plan-1"}
    first = client.post(f"{API}/plans", headers=keyed, json=monthly())
    again = client.post(f"{API}/plans", headers=keyed, json=monthly())
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    other = client.post(f"{API}/plans", headers=keyed, json=monthly(name="Other"))
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


def test_auditors_read_plans_but_never_write(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    plan = create_plan(client, owner)
    auditor = auditor_for(client, owner)
    url = f"{API}/plans/{plan['id']}"
    assert client.get(url, headers=auditor).status_code == 200
    assert client.get(f"{API}/plans", headers=auditor).status_code == 200
    for response in (
        client.post(f"{API}/plans", headers=auditor, json=monthly()),
        client.patch(url, headers=auditor, json={"name": "X"}),
        client.delete(url, headers=auditor),
    ):
        assert response.status_code == 403
    assert client.get(url, headers=owner).json() == plan


def test_another_gym_s_plan_is_404(client: TestClient[Any], owner: dict[str, str]) -> None:
    plan = create_plan(client, owner)
    _, token = signup_and_login(client)
    other = bearer(token)
    url = f"{API}/plans/{plan['id']}"
    for response in (
        client.get(url, headers=other),
        client.get(url, headers=other, params={"version": 1}),
        client.get(f"{url}/history", headers=other),
        client.patch(url, headers=other, json={"name": "Mine"}),
        client.delete(url, headers=other),
    ):
        assert response.status_code == 404, response.text
    assert client.get(f"{API}/plans", headers=other).json() == []
    assert client.get(url, headers=owner).json() == plan
