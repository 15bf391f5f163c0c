"""The OpenAPI document and the server agree: what one allows the other accepts, and
what one refuses the other refuses, in the documented shape.

tests/reliability/test_schemathesis.py fuzzes the whole API against the document;
these are the cases it found, pinned down one by one.
"""

import tomllib
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import bearer, signup_and_login, signup_body

API = "/api/v1"
ROOT = Path(__file__).resolve().parents[2]
PERSON = {"first_name": "A", "last_name": "B", "email": "a@b.org"}


@pytest.fixture
def owner(client: TestClient[Any]) -> dict[str, str]:
    _, token = signup_and_login(client)
    return bearer(token)


@pytest.fixture(scope="module")
def document(client: TestClient[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = client.get("/schema/openapi.json").json()
    return schema


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def field_error(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["status_code"] == 422
    loc: list[str] = body["detail"][0]["loc"]
    return loc


def test_if_match_outside_its_format_is_refused_not_a_failed_precondition(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    created = client.post(f"{API}/customers", headers=owner, json=PERSON).json()
    url = f"{API}/customers/{created['id']}"
    for malformed in ("null", '"1', "1,2", "W/1", "", "-1"):
        response = client.patch(url, headers={**owner, "If-Match": malformed}, json={"notes": "x"})
        assert field_error(response) == ["header", "If-Match"], malformed
    # A request that fails on its own says so, even with a stale precondition.
    stale_and_bad = client.patch(url, headers={**owner, "If-Match": '"9"'}, json={"email": "bad"})
    assert field_error(stale_and_bad) == ["body", "email"]
    assert client.patch(url, headers={**owner, "If-Match": '"9"'}, json={}).status_code == 412
    for version, tag in enumerate(('"1"', "2", 'W/"3"', "*"), start=1):
        response = client.patch(
            url, headers={**owner, "If-Match": tag}, json={"notes": f"n{version}"}
        )
        assert response.status_code == 200, (tag, response.text)


def test_query_values_are_read_as_the_document_types_them(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    queries: list[tuple[list[tuple[str, str | int | float | bool | None]], str]] = [
        ([("min_age", "null")], "min_age"),
        ([("min_age", "1.0")], "min_age"),
        ([("min_age", -1)], "min_age"),
        ([("active", "1")], "active"),
        ([("active", "TRUE")], "active"),
        ([("limit", "5"), ("offset", "0x10")], "offset"),
        ([("limit", "5"), ("limit", "6")], "limit"),
        ([("max_age", "007")], "max_age"),
    ]
    for params, name in queries:
        response = client.get(f"{API}/customers", headers=owner, params=params)
        assert field_error(response) == ["query", name], params
    assert client.get(f"{API}/mails", headers=owner, params={"status": "null"}).status_code == 422
    fine = {"active": "false", "min_age": "-0", "max_age": "70"}
    assert client.get(f"{API}/customers", headers=owner, params=fine).status_code == 200


def test_json_bodies_are_read_as_the_document_types_them(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    person = PERSON
    for wrong, name in (
        ({"active": 0}, "active"),
        ({"active": "true"}, "active"),
        ({"date_of_birth": 0}, "date_of_birth"),
        ({"first_name": 5}, "first_name"),
    ):
        response = client.post(f"{API}/customers", headers=owner, json={**person, **wrong})
        assert field_error(response) == ["body", name], wrong
    fee = client.patch(f"{API}/gyms/me", headers=owner, json={"monthly_fee_cents": "4900"})
    assert field_error(fee) == ["body", "monthly_fee_cents"]
    # JSON Schema's integers include numbers without a fraction.
    whole = client.patch(f"{API}/gyms/me", headers=owner, json={"monthly_fee_cents": 4900.0})
    assert whole.status_code == 200, whole.text
    assert whole.json()["monthly_fee_cents"] == 4900


def test_time_travel_takes_rfc_3339_and_any_moment_in_it(
    client: TestClient[Any], owner: dict[str, str]
) -> None:
    created = client.post(f"{API}/customers", headers=owner, json=PERSON).json()
    url = f"{API}/customers/{created['id']}"
    for moment, status in (
        ("0001-01-01T00:00:00+14:00", 404),  # before anything: no customer yet
        ("9999-12-31T23:59:59-14:00", 200),  # after everything: as now
        ("9999-12-31t23:59:60z", 200),  # lower case and a leap second are RFC 3339
        ("2024-06-01T12:00:00", 422),  # no offset
        ("2024-06-01", 422),
        ("1700000000", 422),
        ("2024-02-30T00:00:00Z", 422),
    ):
        response = client.get(url, headers=owner, params={"as_of": moment})
        assert response.status_code == status, (moment, response.text)


def test_validation_errors_name_their_value(client: TestClient[Any], owner: dict[str, str]) -> None:
    unknown = client.get(f"{API}/events", headers=owner, params={"type": "NoSuchEvent"})
    assert field_error(unknown) == ["query", "type"]
    too_long = client.post(
        f"{API}/auth/auditor-tokens", headers=owner, json={"expires_in_seconds": 0}
    )
    assert field_error(too_long) == ["body", "expires_in_seconds"]
    padded = client.post(f"{API}/auth/signup", json=signup_body(timezone=" UTC"))
    assert field_error(padded) == ["body", "timezone"]
    lowercase = client.post(f"{API}/auth/signup", json=signup_body(currency="usd"))
    assert lowercase.status_code == 201
    assert lowercase.json()["currency"] == "USD"


def test_options_lists_every_method_of_the_path(client: TestClient[Any]) -> None:
    for path, methods in (
        ("/gyms/me", "DELETE, GET, OPTIONS, PATCH"),
        ("/auth/auditor-tokens", "GET, OPTIONS, POST"),
        ("/customers/00000000-0000-0000-0000-000000000000", "DELETE, GET, OPTIONS, PATCH"),
    ):
        response = client.options(f"{API}{path}")
        assert response.status_code == 204
        assert response.headers["allow"] == methods


def test_every_operation_declares_its_statuses_and_headers(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    for method, path, operation in operations(document):
        label = f"{method} {path}"
        responses = operation["responses"]
        parameters = {p["name"]: p for p in operation.get("parameters", [])}
        assert "X-Request-ID" in parameters, label
        for status, response in responses.items():
            headers = response.get("headers", {})
            assert headers["X-Request-ID"]["required"] is True, (label, status)
            if status in ("429", "503") and path.startswith(API):
                assert headers["Retry-After"]["required"] is True, (label, status)
            if status == "401":
                assert "WWW-Authenticate" in headers, label
            if status.startswith("4"):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                expected = "ValidationErrorBody" if status == "422" else "ErrorBody"
                assert ref.endswith(f"/{expected}"), (label, status)
        if (
            path.startswith(API) and not path.startswith(f"{API}/auth/")
        ) or "auditor-tokens" in path:
            assert operation["security"] == [{"BearerToken": []}], label
            assert "401" in responses, label
        if path.startswith(API):
            assert "503" in responses, label
        if method in ("POST", "PATCH"):
            assert {"413", "422"} <= set(responses), label
    customer = document["paths"][f"{API}/customers/{{customer_id}}"]
    for method in ("patch", "delete"):
        if_match = next(p for p in customer[method]["parameters"] if p["name"] == "If-Match")
        assert if_match["schema"]["pattern"].startswith("^(?:\\*|")
        assert "412" in customer[method]["responses"]
    assert "ETag" in customer["get"]["responses"]["200"]["headers"]
    listing = document["paths"][f"{API}/customers"]["get"]["responses"]["200"]
    assert listing["headers"]["X-Total-Count"]["schema"] == {"type": "integer", "minimum": 0}


# Request bodies are the commands' payloads, published under the earlier service's names.
PUBLISHED_AS = {
    "SignupRequest": "NewGym",
    "GymPatchRequest": "ProfileChanges",
    "CustomerCreateRequest": "NewCustomer",
    "CustomerPatchRequest": "CustomerDetails",
    "PasswordChangeRequest": "PasswordChange",
    "PlanCreateRequest": "NewPlan",
    "PlanPatchRequest": "PlanChanges",
    "MembershipSaleRequest": "NewMembership",
    "MembershipFreezeRequest": "FreezeRequest",
    "MembershipUnfreezeRequest": "UnfreezeRequest",
    "MembershipCancelRequest": "CancelRequest",
}


def test_bodies_are_described_by_msgspec_with_the_domains_rules(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        # msgspec's, not Litestar's: titled by the class, published under its contract name
        assert schema.get("title") == PUBLISHED_AS.get(name, name), name
    # A rule over two fields, stated for clients and fuzzers alike.
    assert schemas["NewCheckIn"]["oneOf"] == [
        {"required": ["customer_id"]},
        {"required": ["card_code"]},
    ]
    signup = schemas["SignupRequest"]["properties"]
    assert signup["monthly_fee_cents"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 10**12,
        "description": "Monthly fee in the currency's minor unit.",
    }
    for field in ("name", "email", "currency", "timezone"):
        assert signup[field]["pattern"], field
    patch = schemas["GymPatchRequest"]
    assert patch["required"] == []
    assert patch["properties"]["name"]["pattern"] == signup["name"]["pattern"]
    error = schemas["ValidationErrorBody"]
    assert error["required"] == ["detail", "status_code"]


def test_the_fuzz_configuration_names_real_operations(document: dict[str, Any]) -> None:
    """schemathesis.toml names operations by id; a renamed route must not silently
    drop an exception (or turn one into a failure nobody explains)."""
    config = tomllib.loads((ROOT / "schemathesis.toml").read_text())
    known = {operation["operationId"] for _, _, operation in operations(document)}
    for entry in config["operations"]:
        ids = entry["include-operation-id"]
        for operation_id in [ids] if isinstance(ids, str) else ids:
            assert operation_id in known, operation_id
