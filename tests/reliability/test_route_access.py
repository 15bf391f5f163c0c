"""Hostile: an auditor's token, sent to every operation the API documents, is refused
(403) wherever the owner alone may act, and nothing is written. The list of what
auditors may call is spelled out here, so a route that loses its access rule fails."""

import re
import uuid
from typing import Any

from litestar.testing import TestClient

from tests.integration.test_audit_api import API, auditor_for, gym  # noqa: F401 (fixture)

# (method, path template, query): what an auditor may call. Everything else is the owner's.
AUDITOR_MAY = {
    ("GET", "/api/v1/audit/checkpoint", ""),
    ("GET", "/api/v1/audit/keys", ""),
    ("GET", "/api/v1/audit/verify", ""),
    ("POST", "/api/v1/audit/verify", ""),
    ("GET", "/api/v1/events", ""),
    ("GET", "/api/v1/gyms/me/history", ""),
    ("GET", "/api/v1/customers/{customer_id}", "?version=1"),
    ("GET", "/api/v1/customers/{customer_id}", "?as_of=2030-01-01T00:00:00Z"),
    ("GET", "/api/v1/customers/{customer_id}/history", ""),
    ("GET", "/api/v1/customers/{customer_id}/memberships", ""),
    ("GET", "/api/v1/customers/{customer_id}/check-ins", ""),
    ("GET", "/api/v1/plans", ""),
    ("GET", "/api/v1/plans/{plan_id}", ""),
    ("GET", "/api/v1/plans/{plan_id}/history", ""),
    ("GET", "/api/v1/memberships", ""),
    ("GET", "/api/v1/memberships/{membership_id}", ""),
    ("GET", "/api/v1/memberships/{membership_id}/history", ""),
    ("GET", "/api/v1/check-ins", ""),
    ("GET", "/api/v1/reports/memberships", ""),
    ("GET", "/api/v1/reports/movements", ""),
}
# Operations that answer without a token at all (sign-up, login, health, key).
OPEN = re.compile(r"^/(health|schema)|^/api/v1/auth/(signup|login|token)$|/audit/public-key$")


def operations(client: TestClient[Any]) -> list[tuple[str, str]]:
    document = client.get("/schema/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete") and not OPEN.search(path)
    ]


def test_auditor_tokens_are_refused_wherever_the_owner_alone_may_act(
    client: TestClient[Any],
    gym: tuple[dict[str, Any], dict[str, str]],  # noqa: F811
) -> None:
    _, owner = gym
    auditor = auditor_for(client, owner)
    before = client.get(f"{API}/events", headers=auditor, params={"limit": 1000}).json()
    found = operations(client)
    assert len(found) > 30  # the document was read
    allowed = {(m, p) for m, p, _ in AUDITOR_MAY}
    for method, template in found:
        path = re.sub(r"{[^}]+}", lambda _: str(uuid.uuid4()), template)
        queries = [q for m, p, q in AUDITOR_MAY if (m, p) == (method, template)] or [""]
        for query in queries:
            response = client.request(method, path + query, headers=auditor, json={})
            if (method, template) in allowed:
                assert response.status_code != 403, (method, template, query)
            else:
                assert response.status_code == 403, (method, template, response.text)
                assert response.json()["detail"] == "Auditor tokens are read-only"
    after = client.get(f"{API}/events", headers=auditor, params={"limit": 1000}).json()
    assert after == before  # nothing was written
