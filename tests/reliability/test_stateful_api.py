"""A hypothesis state machine drives the HTTP API against a simple in-memory model."""

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)
from litestar.testing import TestClient

from tests.conftest import bearer, signup_and_login, unique_email
from tests.reliability.scale import size

API = "/api/v1"
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzÄÖÜß -'", min_size=1, max_size=20).filter(
    str.strip
)
# Printable notes only: control characters are refused with 422 (tested elsewhere).
notes = st.none() | st.text(st.characters(categories=["L", "N", "P", "Zs"]), max_size=30)


class CustomersModel(RuleBasedStateMachine):
    """Model: customer id -> the fields the API should return."""

    customers = Bundle("customers")

    def __init__(self, client: TestClient[Any]) -> None:
        super().__init__()
        self.client = client
        _, token = signup_and_login(client)
        self.auth = bearer(token)
        self.model: dict[str, dict[str, Any]] = {}
        self.other_gym = bearer(signup_and_login(client)[1])

    @rule(target=customers, first=names, last=names, active=st.booleans())
    def create(self, first: str, last: str, active: bool) -> str:
        body = {"first_name": first, "last_name": last, "email": unique_email(), "active": active}
        response = self.client.post(f"{API}/customers", headers=self.auth, json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        self.model[created["id"]] = {
            "first_name": first.strip(),
            "last_name": last.strip(),
            "email": body["email"],
            "active": active,
            "notes": None,
        }
        return str(created["id"])

    @rule(customer=customers, note=notes, active=st.none() | st.booleans())
    def update(self, customer: str, note: str | None, active: bool | None) -> None:
        body: dict[str, Any] = {"notes": note}
        if active is not None:
            body["active"] = active
        response = self.client.patch(f"{API}/customers/{customer}", headers=self.auth, json=body)
        if customer not in self.model:
            assert response.status_code == 404
            return
        assert response.status_code == 200, response.text
        self.model[customer]["notes"] = note.strip() or None if note else None
        if active is not None:
            self.model[customer]["active"] = active

    @rule(customer=consumes(customers))
    def remove(self, customer: str) -> None:
        response = self.client.delete(f"{API}/customers/{customer}", headers=self.auth)
        assert response.status_code == (204 if customer in self.model else 404)
        self.model.pop(customer, None)

    @rule(customer=customers)
    def another_gym_sees_nothing(self, customer: str) -> None:
        response = self.client.get(f"{API}/customers/{customer}", headers=self.other_gym)
        assert response.status_code == 404

    @invariant()
    def api_matches_model(self) -> None:
        listed = self.client.get(f"{API}/customers", headers=self.auth, params={"limit": 200})
        assert int(listed.headers["x-total-count"]) == len(self.model)
        seen = {c["id"]: c for c in listed.json()}
        assert set(seen) == set(self.model)
        for customer_id, expected in self.model.items():
            actual = {k: seen[customer_id][k] for k in expected}
            assert actual == expected, (customer_id, actual, expected)


def test_http_api_behaves_like_the_model(client: TestClient[Any]) -> None:
    run_state_machine_as_test(
        lambda: CustomersModel(client),  # type: ignore[arg-type]  # a factory works too
        settings=settings(
            max_examples=size(8, 40),
            stateful_step_count=size(10, 25),
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
