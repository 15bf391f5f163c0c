"""Strict reading caches what each route handler reads; a cache entry must never be
served to another handler that happens to get a dead one's id (CI saw a signup's body
rules applied to `POST /auth/auditor-tokens` once a test's second app was collected)."""

from typing import Any

from litestar import Litestar
from litestar.di import Provide

from api import strict
from api.app import services
from api.routes.audit import AuditController
from api.routes.gyms import AuthController


def handlers() -> dict[str, Any]:
    app = Litestar(
        route_handlers=[AuthController, AuditController],
        dependencies={"services": Provide(services, sync_to_thread=False)},
    )
    found = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                found[f"{method} {route.path}"] = handler
    return found


def test_an_entry_under_a_reused_id_is_not_served_to_another_handler() -> None:
    routes = handlers()
    signup, grant = routes["POST /auth/signup"], routes["POST /auth/auditor-tokens"]
    signup_body = strict._json_body(signup)
    # As if `grant` had been allocated where a collected signup handler used to live.
    strict._body_types[id(grant)] = strict._body_types[id(signup)]
    strict._rules_of[id(grant)] = strict._rules_of.get(
        id(signup), (signup, {"x": ("integer", None)})
    )
    assert strict._json_body(grant) is not signup_body
    assert getattr(strict._json_body(grant), "__name__", None) == "AuditorTokenRequest"
    assert "x" not in strict._rules(grant)
