"""Hostile input: a clear 4xx in the documented shape, and nothing stored."""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import jwt
import psycopg
import pytest
from litestar.testing import TestClient

from tests.conftest import bearer, signup_and_login, signup_body, unique_email
from tests.integration.helpers import head_position

API = "/api/v1"
NASTY = [
    "' OR 1=1 --",
    "'; DROP TABLE customers; --",
    "%_%",
    "\\",
    "😀" * 50,
    "a" * 10_000,
    "\u202e\u0000",
]


@pytest.fixture
def owner(client: TestClient[Any]) -> dict[str, str]:
    _, token = signup_and_login(client)
    return bearer(token)


def marked(headers: dict[str, str]) -> tuple[dict[str, str], str]:
    """The headers with a request id of their own: the correlation id of every event the
    request causes, so the log says exactly what it stored."""
    request_id = f"hostile-{uuid.uuid4().hex}"
    return {**headers, "X-Request-ID": request_id}, request_id


def events_caused_by(
    database_url: str, after: int, request_ids: set[str]
) -> list[tuple[str, bytes]]:
    """(topic, stored bytes) of the events after position `after` that these requests
    caused. The log is written before a response is sent, so it is complete once the
    responses are in (unlike the read model, or X-Total-Count cached per read-model
    position, which a write that had slipped through would not have reached yet)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT topic, state FROM gymledger_events WHERE notification_id > %s", (after,)
        ).fetchall()
    return [
        (str(topic), bytes(state))
        for topic, state in rows
        if json.loads(bytes(state))["metadata"]["correlation_id"] in request_ids
    ]


def stored_by(database_url: str, after: int, request_ids: set[str]) -> list[str]:
    return [topic for topic, _ in events_caused_by(database_url, after, request_ids)]


def assert_error_shape(response: Any) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
    body = response.json()
    assert "detail" in body
    assert body["status_code"] == response.status_code


@pytest.mark.parametrize("value", NASTY)
def test_filters_and_paths_survive_injection_attempts(
    client: TestClient[Any], owner: dict[str, str], value: str
) -> None:
    for param in ("search", "first_name", "last_name", "email"):
        response = client.get(f"{API}/customers", headers=owner, params={param: value})
        assert response.status_code in (200, 422), response.text[:200]
        if response.status_code == 200:
            assert response.json() == []
        else:
            assert_error_shape(response)
    if "\x00" in value:
        return  # no HTTP client sends NUL in a path
    for path in (f"{API}/customers/{value}", f"{API}/customers/{value}/history"):
        response = client.get(path, headers=owner)
        assert response.status_code in (400, 404, 422)


@pytest.mark.parametrize(
    "body",
    [
        {"first_name": "a" * 100_000, "last_name": "b", "email": "x@y.org"},
        {"first_name": "A", "last_name": "B", "email": "x@y.org", "notes": "\u0000"},
        {"first_name": "A", "last_name": "B", "email": "x@y.org", "date_of_birth": "9999-99-99"},
        {"first_name": "A", "last_name": "B", "email": "x@y.org", "active": 10**400},
        {"first_name": ["A"], "last_name": "B", "email": "x@y.org"},
        {"first_name": {"nested": {"deeper": [1, [2, [3]]]}}, "last_name": "B", "email": "x@y"},
    ],
)
def test_bad_customer_bodies_are_refused_and_store_nothing(
    client: TestClient[Any], owner: dict[str, str], settings: Any, body: dict[str, Any]
) -> None:
    start = head_position(settings.database_url)
    headers, request_id = marked(owner)
    assert_error_shape(client.post(f"{API}/customers", headers=headers, json=body))
    assert stored_by(settings.database_url, start, {request_id}) == []


def test_deeply_nested_and_malformed_json(
    client: TestClient[Any], owner: dict[str, str], settings: Any
) -> None:
    start = head_position(settings.database_url)
    deep = "[" * 5000 + "]" * 5000
    sent = set()
    for raw in (deep.encode(), b'{"first_name": "\xff\xfe"}', b"{", b"null", b"12e999999"):
        headers, request_id = marked({**owner, "content-type": "application/json"})
        assert_error_shape(client.post(f"{API}/customers", headers=headers, content=raw))
        sent.add(request_id)
    assert stored_by(settings.database_url, start, sent) == []


def test_huge_numbers_in_queries(client: TestClient[Any], owner: dict[str, str]) -> None:
    for params in (
        {"limit": 10**30},
        {"offset": 10**30},
        {"min_age": 10**30},
        {"max_age": -(10**30)},
    ):
        assert_error_shape(client.get(f"{API}/customers", headers=owner, params=params))
    assert_error_shape(client.get(f"{API}/events", headers=owner, params={"after": 10**30}))
    signup = client.post(f"{API}/auth/signup", json=signup_body(monthly_fee_cents=10**30))
    assert_error_shape(signup)


def test_tokens_with_other_algorithms_or_payloads_are_401(
    client: TestClient[Any], settings: Any
) -> None:
    gym, _ = signup_and_login(client)
    now = datetime.now(UTC)
    claims = {"sub": gym["id"], "iat": now, "exp": now + timedelta(hours=1)}
    other_algorithm = jwt.encode(claims, settings.jwt_secret, algorithm="HS512")
    bad_scope = jwt.encode({**claims, "scope": "admin"}, settings.jwt_secret)
    no_subject = jwt.encode({"iat": now, "exp": now + timedelta(hours=1)}, settings.jwt_secret)
    not_uuid = jwt.encode({**claims, "sub": "'; DROP TABLE gyms; --"}, settings.jwt_secret)
    header = json.dumps({"alg": "none", "typ": "JWT"}).encode()
    for token in (other_algorithm, bad_scope, no_subject, not_uuid, header.hex()):
        response = client.get(f"{API}/gyms/me", headers=bearer(token))
        assert response.status_code == 401, token


def test_oversized_login_form_and_unknown_fields(client: TestClient[Any], settings: Any) -> None:
    response = client.post(f"{API}/auth/login", data={"username": "a" * 2_000_000, "password": "x"})
    assert response.status_code == 413
    start = head_position(settings.database_url)
    headers, request_id = marked({})
    extra = client.post(
        f"{API}/auth/signup", headers=headers, json={**signup_body(), "is_admin": True}
    )
    assert extra.status_code == 201  # unknown fields are ignored, never stored
    assert "is_admin" not in extra.text
    stored = events_caused_by(settings.database_url, start, {request_id})
    assert sorted(topic.split(".")[0] for topic, _ in stored) == ["EmailClaimed", "GymRegistered"]
    assert [topic for topic, state in stored if b"is_admin" in state] == []


# --- NUL bytes, invalid UTF-8 and overlong values, everywhere, on every route -----------
#
# Sent straight to the ASGI app, so bytes no HTTP client library would produce (a raw
# 0xFF in a query string, NUL in a header) reach the code exactly as a hostile client
# or a lax proxy could deliver them.

BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")
LONG = 100_000  # well under MAX_BODY_BYTES, far over every field's limit
HOSTILE_TEXT = ("\x00", "with a NUL\x00 inside", "\ud800", "a" * LONG)
HOSTILE_BYTES = (b"\x00", b"k\x00", *BAD_UTF8, b"a" * 10_000)
HOSTILE_QUERY = (b"%00", b"a%00b", b"\x00", b"%FF", b"%ED%A0%80", *BAD_UTF8, b"a" * 10_000)
HOSTILE_HEADERS = (
    "idempotency-key",
    "if-match",
    "x-request-id",
    "accept",
    "authorization",
    "content-type",
)


@dataclass(frozen=True)
class Target:
    """One concrete request to an operation: its path, the caller and a valid body."""

    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None


class Hostile:
    """Sends requests, remembering the request id of each that must store nothing."""

    def __init__(self, client: TestClient[Any], settings: Any) -> None:
        self.client = client
        self.settings = settings
        self.start = head_position(settings.database_url)
        self.refused: set[str] = set()
        self.failures: list[str] = []
        _, token = signup_and_login(client)
        self.owner = bearer(token)
        self.customer = self.new_customer()

    def new_customer(self) -> str:
        body = {"first_name": "A", "last_name": "B", "email": unique_email("member")}
        response = self.client.post(f"{API}/customers", headers=self.owner, json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def new_owner(self) -> dict[str, str]:
        return bearer(signup_and_login(self.client)[1])

    def new_plan(self) -> str:
        response = self.client.post(f"{API}/plans", headers=self.owner, json=PLAN_FIELDS)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    @property
    def plan(self) -> str:
        if not hasattr(self, "_plan"):
            self._plan = self.new_plan()
        return self._plan

    @property
    def membership(self) -> str:
        """One membership of the gym's customer, sold once: the commands sent to it
        may be refused by its state (409), never with a 5xx."""
        if not hasattr(self, "_membership"):
            sale = {"plan_id": self.plan, "starts_on": "2097-03-01"}
            url = f"{API}/customers/{self.customer}/memberships"
            response = self.client.post(url, headers=self.owner, json=sale)
            assert response.status_code == 201, response.text
            self._membership = str(response.json()["id"])
        return self._membership

    def send(
        self,
        what: str,
        method: str,
        path: str,
        query: bytes = b"",
        headers: dict[str, bytes] | None = None,
        body: bytes = b"",
        content_type: bytes = b"application/json",
        must_refuse: bool = False,
    ) -> int:
        """Never 5xx; a 4xx in the documented shape; `must_refuse`: it has to be 4xx."""
        request_id = f"hostile-{uuid.uuid4().hex}"
        raw_headers = {"x-request-id": request_id.encode(), "content-type": content_type}
        raw_headers |= headers or {}
        status, payload = _asgi(self.client, method, path, query, raw_headers, body)
        label = f"{what}: {method} {path}?{query[:40]!r} -> {status} {payload[:120]!r}"
        if status >= 500 or (must_refuse and status < 400):
            self.failures.append(label)
        elif status >= 400:
            try:
                decoded = json.loads(payload)
            except ValueError:
                decoded = None
            shaped = isinstance(decoded, dict) and {"detail", "status_code"} <= set(decoded)
            if not shaped or decoded["status_code"] != status:
                self.failures.append(f"error shape: {label}")
            self.refused.add(request_id)
        return status

    def stored_by_refused_requests(self) -> list[str]:
        return stored_by(self.settings.database_url, self.start, self.refused)


def _asgi(
    client: TestClient[Any],
    method: str,
    path: str,
    query: bytes,
    headers: dict[str, bytes],
    body: bytes,
) -> tuple[int, bytes]:
    app = client.app

    async def run() -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "headers": [(b"host", b"testserver"), *((k.encode(), v) for k, v in headers.items())],
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status, chunks = 0, []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(scope, receive, send)
        return status, b"".join(chunks)

    return client.blocking_portal.call(run)


def _signup_target(h: Hostile) -> Target:
    body = signup_body(address="1 Main St", description="d", gym_type="crossfit", timezone="UTC")
    return Target(f"{API}/auth/signup", {}, json=body)


def _login_target(h: Hostile) -> Target:
    return Target(f"{API}/auth/login", {}, form={"username": unique_email(), "password": "x" * 8})


def _gym_patch_target(h: Hostile) -> Target:
    body = {
        "name": "Renamed",
        "email": unique_email(),
        "address": "2 Side St",
        "description": "new",
        "gym_type": "yoga",
        "currency": "USD",
        "timezone": "Europe/Berlin",
    }
    return Target(f"{API}/gyms/me", h.owner, json=body)


def _password_change_target(h: Hostile) -> Target:
    """A fresh owner each time: a change ends every earlier token of the gym."""
    body = signup_body()
    assert h.client.post(f"{API}/auth/signup", json=body).status_code == 201
    login = {"username": body["email"], "password": body["password"]}
    token = h.client.post(f"{API}/auth/login", data=login).json()["access_token"]
    change = {"current_password": body["password"], "new_password": "violet kettle harbour 42"}
    return Target(f"{API}/auth/password", bearer(token), json=change)


def _revoke_target(h: Hostile) -> Target:
    granted = h.client.post(
        f"{API}/auth/auditor-tokens", headers=h.owner, json={"expires_in_seconds": 60}
    )
    listed = h.client.get(f"{API}/auth/auditor-tokens", headers=h.owner).json()
    assert granted.status_code == 201, granted.text
    assert listed
    return Target(f"{API}/auth/auditor-tokens/{listed[0]['id']}", h.owner)


CUSTOMER_FIELDS = {"first_name": "Ann", "last_name": "Lee", "phone": "+1 555", "notes": "n"}


def _customer_create_target(h: Hostile) -> Target:
    return Target(f"{API}/customers", h.owner, json={**CUSTOMER_FIELDS, "email": unique_email()})


def _customer_patch_target(h: Hostile) -> Target:
    body = {**CUSTOMER_FIELDS, "email": unique_email()}
    return Target(f"{API}/customers/{h.new_customer()}", h.owner, json=body)


PLAN_FIELDS = {"name": "Monthly", "price_cents": 100, "currency": "EUR", "term": {"months": 1}}


def _membership_target(name: str, body: dict[str, Any] | None = None) -> Any:
    return lambda h: Target(f"{API}/memberships/{h.membership}/{name}", h.owner, json=body)


# Every operation of the schema, with a valid request to start from. Operations that
# change or close what they act on get a fresh customer or gym for each request.
OPERATIONS: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/auth/signup"): _signup_target,
    ("POST", "/api/v1/auth/login"): _login_target,
    ("POST", "/api/v1/auth/auditor-tokens"): lambda h: Target(
        f"{API}/auth/auditor-tokens", h.owner, json={"expires_in_seconds": 60}
    ),
    ("GET", "/api/v1/gyms/me"): lambda h: Target(f"{API}/gyms/me", h.owner),
    ("PATCH", "/api/v1/gyms/me"): _gym_patch_target,
    ("DELETE", "/api/v1/gyms/me"): lambda h: Target(f"{API}/gyms/me", h.new_owner()),
    ("GET", "/api/v1/gyms/me/history"): lambda h: Target(f"{API}/gyms/me/history", h.owner),
    ("GET", "/api/v1/customers"): lambda h: Target(f"{API}/customers", h.owner),
    ("POST", "/api/v1/customers"): _customer_create_target,
    ("GET", "/api/v1/customers/{customer_id}"): lambda h: Target(
        f"{API}/customers/{h.customer}", h.owner
    ),
    ("PATCH", "/api/v1/customers/{customer_id}"): _customer_patch_target,
    ("DELETE", "/api/v1/customers/{customer_id}"): lambda h: Target(
        f"{API}/customers/{h.new_customer()}", h.owner
    ),
    ("GET", "/api/v1/customers/{customer_id}/history"): lambda h: Target(
        f"{API}/customers/{h.customer}/history", h.owner
    ),
    ("GET", "/api/v1/events"): lambda h: Target(f"{API}/events", h.owner),
    ("GET", "/api/v1/mails"): lambda h: Target(f"{API}/mails", h.owner),
    ("GET", "/api/v1/reports/memberships"): lambda h: Target(
        f"{API}/reports/memberships?on=2097-03-05", h.owner
    ),
    ("GET", "/api/v1/reports/movements"): lambda h: Target(
        f"{API}/reports/movements?from=2097-03-01&to=2097-03-31", h.owner
    ),
    ("GET", "/api/v1/audit/verify"): lambda h: Target(f"{API}/audit/verify", h.owner),
    ("POST", "/api/v1/audit/verify"): lambda h: Target(
        f"{API}/audit/verify",
        h.owner,
        json=h.client.get(f"{API}/audit/checkpoint", headers=h.owner).json(),
    ),
    ("GET", "/api/v1/audit/checkpoint"): lambda h: Target(f"{API}/audit/checkpoint", h.owner),
    ("GET", "/api/v1/audit/keys"): lambda h: Target(f"{API}/audit/keys", h.owner),
    ("POST", "/api/v1/auth/password"): _password_change_target,
    ("GET", "/api/v1/auth/auditor-tokens"): lambda h: Target(f"{API}/auth/auditor-tokens", h.owner),
    ("DELETE", "/api/v1/auth/auditor-tokens/{token_id}"): _revoke_target,
    ("POST", "/api/v1/plans"): lambda h: Target(f"{API}/plans", h.owner, json=PLAN_FIELDS),
    ("GET", "/api/v1/plans"): lambda h: Target(f"{API}/plans", h.owner),
    ("GET", "/api/v1/plans/{plan_id}"): lambda h: Target(f"{API}/plans/{h.plan}", h.owner),
    ("PATCH", "/api/v1/plans/{plan_id}"): lambda h: Target(
        f"{API}/plans/{h.new_plan()}", h.owner, json={"name": "Yearly", "currency": "USD"}
    ),
    ("DELETE", "/api/v1/plans/{plan_id}"): lambda h: Target(f"{API}/plans/{h.new_plan()}", h.owner),
    ("GET", "/api/v1/plans/{plan_id}/history"): lambda h: Target(
        f"{API}/plans/{h.plan}/history", h.owner
    ),
    ("POST", "/api/v1/customers/{customer_id}/memberships"): lambda h: Target(
        f"{API}/customers/{h.customer}/memberships",
        h.owner,
        json={"plan_id": h.plan, "starts_on": "2097-03-01"},
    ),
    ("GET", "/api/v1/customers/{customer_id}/memberships"): lambda h: Target(
        f"{API}/customers/{h.customer}/memberships", h.owner
    ),
    ("GET", "/api/v1/memberships"): lambda h: Target(f"{API}/memberships", h.owner),
    ("GET", "/api/v1/memberships/{membership_id}"): lambda h: Target(
        f"{API}/memberships/{h.membership}", h.owner
    ),
    ("GET", "/api/v1/memberships/{membership_id}/history"): lambda h: Target(
        f"{API}/memberships/{h.membership}/history", h.owner
    ),
    ("POST", "/api/v1/memberships/{membership_id}/freeze"): _membership_target(
        "freeze", {"starts_on": "2097-03-02", "ends_on": "2097-03-02", "reason": "trip"}
    ),
    ("POST", "/api/v1/memberships/{membership_id}/unfreeze"): _membership_target(
        "unfreeze", {"on": "2097-03-02"}
    ),
    ("POST", "/api/v1/memberships/{membership_id}/renew"): _membership_target("renew"),
    ("POST", "/api/v1/memberships/{membership_id}/cancel"): _membership_target(
        "cancel", {"effective_on": "2097-09-01", "reason": "moving"}
    ),
    ("POST", "/api/v1/check-ins"): lambda h: Target(
        f"{API}/check-ins", h.owner, json={"customer_id": h.customer}
    ),
    ("GET", "/api/v1/check-ins"): lambda h: Target(f"{API}/check-ins?on=2097-03-05", h.owner),
    ("GET", "/api/v1/customers/{customer_id}/check-ins"): lambda h: Target(
        f"{API}/customers/{h.customer}/check-ins", h.owner
    ),
    ("GET", "/health"): lambda h: Target("/health", {}),
    ("GET", "/health/live"): lambda h: Target("/health/live", {}),
    ("GET", "/health/ready"): lambda h: Target("/health/ready", {}),
}


MEMBERSHIP_COMMANDS = {
    ("POST", f"/api/v1/memberships/{{membership_id}}/{name}")
    for name in ("freeze", "unfreeze", "renew", "cancel")
}
REFUSED_WITH_BAD_HEADER = {
    "idempotency-key": {
        ("POST", "/api/v1/auth/signup"),
        ("POST", "/api/v1/customers"),
        ("POST", "/api/v1/plans"),
        ("POST", "/api/v1/customers/{customer_id}/memberships"),
        *MEMBERSHIP_COMMANDS,
    },
    "if-match": {
        ("PATCH", "/api/v1/customers/{customer_id}"),
        ("DELETE", "/api/v1/customers/{customer_id}"),
        ("PATCH", "/api/v1/plans/{plan_id}"),
        ("DELETE", "/api/v1/plans/{plan_id}"),
        *MEMBERSHIP_COMMANDS,
    },
}


def _schema(client: TestClient[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = client.get("/schema/openapi.json").json()
    return schema


def _query_params(client: TestClient[Any]) -> dict[tuple[str, str], list[str]]:
    return {
        (method.upper(), path): [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
        for path, item in _schema(client)["paths"].items()
        for method, op in item.items()
    }


def _encode(target: Target) -> tuple[bytes, bytes]:
    if target.form is not None:
        return urlencode(target.form).encode(), b"application/x-www-form-urlencoded"
    if target.json is not None:
        return json.dumps(target.json).encode(), b"application/json"
    return b"", b"application/json"


def _auth(target: Target) -> dict[str, bytes]:
    return {k.lower(): v.encode() for k, v in target.headers.items()}


@pytest.fixture
def hostile(client: TestClient[Any], settings: Any) -> Hostile:
    return Hostile(client, settings)


def test_the_sweep_covers_every_operation_of_the_schema(client: TestClient[Any]) -> None:
    assert set(_query_params(client)) == set(OPERATIONS)


def test_hostile_text_in_any_body_field_is_refused_and_stores_nothing(hostile: Hostile) -> None:
    for (method, _), prepare in OPERATIONS.items():
        fields = _encode_fields(prepare(hostile))
        for field in fields:
            for value in HOSTILE_TEXT:
                target = prepare(hostile)
                if target.form is not None:
                    form = {**target.form, field: value}
                    body = urlencode(form, encoding="utf-8", errors="surrogatepass").encode()
                    ctype = b"application/x-www-form-urlencoded"
                else:
                    assert target.json is not None
                    body, ctype = (
                        json.dumps({**target.json, field: value}).encode(),
                        b"application/json",
                    )
                # A password may be long only up to 72 characters: every value here is refused.
                hostile.send(
                    f"{field}={value[:8]!r}",
                    method,
                    target.path,
                    headers=_auth(target),
                    body=body,
                    content_type=ctype,
                    must_refuse=True,
                )
            for bad in BAD_UTF8:
                target = prepare(hostile)
                body, ctype = _encode(target)
                marker = _marker(target, field)
                assert marker in body, (marker, body)
                hostile.send(
                    f"{field} raw {bad!r}",
                    method,
                    target.path,
                    headers=_auth(target),
                    body=body.replace(marker, marker[:-1] + bad + marker[-1:], 1),
                    content_type=ctype,
                    must_refuse=target.form is None,  # a form decodes as U+FFFD: a wrong login
                )
    assert not hostile.failures, "\n".join(hostile.failures)
    assert hostile.stored_by_refused_requests() == []


def _encode_fields(target: Target) -> list[str]:
    values = target.form if target.form is not None else (target.json or {})
    return [k for k, v in values.items() if isinstance(v, str)]


def _marker(target: Target, field: str) -> bytes:
    """The encoded `"field": "value` of a JSON body, or `field=value` of a form."""
    if target.form is not None:
        return urlencode({field: target.form[field]}).encode()
    assert target.json is not None
    return json.dumps({field: target.json[field]}).encode()[1:-1].rstrip(b'"') + b'"'


def test_hostile_bytes_in_any_query_parameter_never_fail(hostile: Hostile) -> None:
    params = _query_params(hostile.client)
    for (method, template), prepare in OPERATIONS.items():
        if method != "GET":
            continue  # no write takes query parameters; an unknown one is ignored
        names = [*params[(method, template)], "unknown"]
        target = prepare(hostile)
        for name in names:
            for value in HOSTILE_QUERY:
                hostile.send(
                    f"query {name}",
                    method,
                    target.path,
                    name.encode() + b"=" + value,
                    _auth(target),
                )
    assert not hostile.failures, "\n".join(hostile.failures)


def test_hostile_bytes_in_headers_never_fail_and_bad_keys_store_nothing(
    hostile: Hostile,
) -> None:
    for operation, prepare in OPERATIONS.items():
        method = operation[0]
        for header in HOSTILE_HEADERS:
            # A key or a precondition the server cannot honour must refuse the write.
            refuse = operation in REFUSED_WITH_BAD_HEADER.get(header, set())
            for value in HOSTILE_BYTES:
                target = prepare(hostile)
                body, ctype = _encode(target)
                hostile.send(
                    f"header {header}={value[:8]!r}",
                    method,
                    target.path,
                    headers={**_auth(target), header: value},
                    body=body,
                    content_type=ctype,
                    must_refuse=refuse,
                )
    assert not hostile.failures, "\n".join(hostile.failures)
    assert hostile.stored_by_refused_requests() == []


@pytest.mark.parametrize(
    "segment", ["%00", "%FF", "%ED%A0%80", "a" * 10_000, str(uuid.uuid4()) + "%00"]
)
def test_hostile_path_segments_are_not_found(hostile: Hostile, segment: str) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        for suffix in ("", "/history"):
            status = hostile.send(
                "path",
                method,
                f"{API}/customers/{segment}{suffix}",
                headers=_auth(Target("", hostile.owner)),
                body=b"{}",
            )
            assert status in (404, 405, 422), (method, segment[:20], suffix, status)
    assert not hostile.failures, "\n".join(hostile.failures)


def test_login_with_nul_or_invalid_utf8_is_a_4xx(client: TestClient[Any]) -> None:
    for form in (
        {"username": "a\x00b@example.com", "password": "whatever1"},
        {"username": "\x00", "password": "\x00"},
        {"username": unique_email(), "password": "pass\x00word"},
    ):
        response = client.post(f"{API}/auth/login", data=form)
        assert_error_shape(response)


@pytest.mark.parametrize(
    "as_of",
    [
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00-14:00",
        "9999-12-31T23:59:59+00:00",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59+14:00",
        "2024-06-01T12:00:00",
        "2024-06-01",
        "yesterday",
        "2024-13-45T99:99:99Z",
    ],
)
def test_time_travel_to_any_moment_is_never_a_5xx(
    client: TestClient[Any], owner: dict[str, str], as_of: str
) -> None:
    body = {"first_name": "A", "last_name": "B", "email": unique_email("member")}
    created = client.post(f"{API}/customers", headers=owner, json=body).json()
    response = client.get(
        f"{API}/customers/{created['id']}", headers=owner, params={"as_of": as_of}
    )
    if response.status_code != 200:
        assert_error_shape(response)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            b"multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="username"\r\n\r\n\x00\r\n--x--',
        ),
        (b"multipart/form-data; boundary=x", b"\xff" * 64),
        (b"multipart/form-data", b"--x--"),
        (b"application/x-www-form-urlencoded; charset=\xff", b"username=%00&password=%FF"),
        (b"application/x-www-form-urlencoded", b"\x00=\x00&&&=&username"),
        (b"application/json", b'{"username": "a", "password": "b"}'),
        (b"text/plain; charset=utf-8", b"\xff\xfe"),
    ],
)
def test_login_bodies_of_any_content_type_are_a_4xx(
    hostile: Hostile, content_type: bytes, body: bytes
) -> None:
    hostile.send(
        "login", "POST", f"{API}/auth/login", body=body, content_type=content_type, must_refuse=True
    )
    for path in (f"{API}/auth/signup", f"{API}/customers"):
        hostile.send(
            "json route",
            "POST",
            path,
            headers=_auth(Target("", hostile.owner)),
            body=body,
            content_type=content_type,
            must_refuse=True,
        )
    assert not hostile.failures, "\n".join(hostile.failures)
    assert hostile.stored_by_refused_requests() == []


# --- Mail header injection: refused when the value comes in, not by the mail worker -----

LINE_BREAKS = ("\r\n", "\n", "\r", "\u2028", "\u2029", "\x85")
NOT_ONE_ADDRESS = (
    "victim@example.com,attacker.example.org",
    "victim@example.com;x.example.org",
    "bob<bob@attacker.example>",
    "victim@example.com(comment).org",
    '"victim"@example.com',
    "victim@[127.0.0.1].example",
    "victim\\@x@example.com",
    "victim@example.com:25.org",
)


def _header_values(field: str) -> list[str]:
    """Values of `field` that would add a header or a recipient to a welcome mail."""
    if field == "email":
        injected = [f"victim@example.com{b}Bcc: attacker@example.org" for b in LINE_BREAKS]
        return injected + list(NOT_ONE_ADDRESS)
    return [f"Iron{b}Bcc: attacker@example.org" for b in LINE_BREAKS]


def _refused_at(response: Any, field: str) -> bool:
    if response.status_code != 422:
        return False
    return any(item["loc"] == ["body", field] for item in response.json()["detail"])


def test_mail_header_fields_with_line_breaks_or_many_addresses_are_422(
    client: TestClient[Any], settings: Any
) -> None:
    _, token = signup_and_login(client)
    owner = bearer(token)
    member = {"first_name": "A", "last_name": "B", "email": unique_email("member")}
    customer = client.post(f"{API}/customers", headers=owner, json=member).json()["id"]
    start = head_position(settings.database_url)
    failures = []
    for field in ("name", "email"):
        for value in _header_values(field):
            for response in (
                client.post(f"{API}/auth/signup", json=signup_body(**{field: value})),
                client.patch(f"{API}/gyms/me", headers=owner, json={field: value}),
            ):
                if not _refused_at(response, field):
                    failures.append(f"gym {field}={value!r}: {response.status_code}")
    for field in ("first_name", "last_name", "email"):
        for value in _header_values(field if field == "email" else "name"):
            for response in (
                client.post(f"{API}/customers", headers=owner, json={**member, field: value}),
                client.patch(f"{API}/customers/{customer}", headers=owner, json={field: value}),
            ):
                if not _refused_at(response, field):
                    failures.append(f"customer {field}={value!r}: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert head_position(settings.database_url) == start, "a refused value was stored"


def test_multi_line_text_that_no_mail_header_carries_stays_allowed(
    client: TestClient[Any],
) -> None:
    _, token = signup_and_login(client)
    owner = bearer(token)
    notes = {"first_name": "A", "last_name": "B", "email": unique_email(), "notes": "a\nb\r\nc"}
    assert client.post(f"{API}/customers", headers=owner, json=notes).status_code == 201
    patched = client.patch(f"{API}/gyms/me", headers=owner, json={"description": "one\ntwo"})
    assert patched.status_code == 200
    assert patched.json()["description"] == "one\ntwo"
