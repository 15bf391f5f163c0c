"""Bearer tokens (HS256 JWT) and the dependencies that turn one into a caller.

Two scopes: "owner" (everything for their gym) and "auditor" (read-only access
to history, time travel, the event feed and verification, until it expires).

Revocation: every token carries the gym's token generation at issue (`gen`; tokens
from before generations existed have none and count as 0). A password change moves
the gym's generation on, so every earlier token is refused, whatever second it was
issued in. Revoked auditor tokens are refused by id (`jti`). Both facts come from
the gyms read model through the per-process cache (api/gym_cache.py).

Time comes from the app's Clock (infra/clock.py), never from the wall clock here:
callers pass `now` to issue a token and to check one, so tests move time instead of
waiting for it.
"""

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid4

import jwt
from litestar import Controller
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from api.gym_cache import OpenGyms
from api.openapi import SECURED
from api.state import AppState, Services
from infra.clock import local_date
from projections.gyms import GymAccess, open_gym_access

_ALGORITHM = "HS256"
TOKEN_CACHE_SIZE = 10_000
Scope = Literal["owner", "auditor"]


def issue_token(
    gym_id: UUID,
    secret: str,
    expires_at: datetime,
    scope: Scope = "owner",
    token_id: UUID | None = None,
    generation: int = 0,
    *,
    issued_at: datetime,
) -> str:
    claims = {
        "sub": str(gym_id),
        "iat": issued_at,
        "exp": expires_at,
        "scope": scope,
        "jti": str(token_id or uuid4()),
        "gen": generation,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def owner_token(gym_id: UUID, secret: str, ttl_seconds: int, generation: int, now: datetime) -> str:
    expires_at = now + timedelta(seconds=ttl_seconds)
    return issue_token(gym_id, secret, expires_at, generation=generation, issued_at=now)


def _unauthorized() -> NotAuthorizedException:
    return NotAuthorizedException(
        detail="Could not validate credentials", headers={"WWW-Authenticate": "Bearer"}
    )


@dataclass(frozen=True)
class TokenClaims:
    gym_id: UUID
    scope: Scope
    generation: int
    token_id: UUID | None  # None: an owner token without a jti of ours
    # POSIX seconds, whole as PyJWT reads them.
    expires: int
    issued_at: int
    not_before: int | None = None  # `nbf`, when the token has one

    def in_force(self, now: datetime) -> bool:
        """Issued, past its `nbf`, not yet expired: the time checks PyJWT makes on
        decoding, made against the app's clock and on every use (the verified claims
        are cached, their time is not)."""
        moment = now.timestamp()
        if self.issued_at > moment:
            return False
        if self.not_before is not None and self.not_before > moment:
            return False
        return self.expires > moment


@functools.lru_cache(maxsize=TOKEN_CACHE_SIZE)
def _verified_claims(token: str, secret: str) -> TokenClaims:
    """The claims of a token whose signature checks out.

    Cached because clients send the same token with every request and checking it
    costs more than the rest of a typical read; expiry and revocation are checked
    on every use."""
    # Pinning the algorithm list rejects "none" and algorithm-swap tokens. PyJWT would
    # compare exp, iat and nbf with the wall clock; TokenClaims.in_force compares them
    # with the app's clock instead.
    claims = jwt.decode(
        token,
        secret,
        algorithms=[_ALGORITHM],
        options={
            "require": ["exp", "iat", "sub"],
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
        },
    )
    scope = claims.get("scope", "owner")
    if scope not in ("owner", "auditor"):
        raise ValueError(scope)
    generation = claims.get("gen", 0)
    # bool is an int in Python; a generation is a plain non-negative integer.
    if type(generation) is not int or generation < 0:
        raise ValueError(generation)
    return TokenClaims(
        gym_id=UUID(str(claims["sub"])),
        scope=scope,
        generation=generation,
        token_id=_token_id(claims.get("jti"), scope),
        # Not whole numbers of seconds (or too large for one): a bad token, as in PyJWT.
        expires=int(claims["exp"]),
        issued_at=int(claims["iat"]),
        not_before=int(claims["nbf"]) if "nbf" in claims else None,
    )


def _token_id(jti: object, scope: Scope) -> UUID | None:
    """Auditor tokens are revoked by id, so theirs must be one of ours; an owner
    token's id is not used, and other clients' tokens may carry any string there."""
    try:
        return UUID(str(jti)) if jti is not None else None
    except ValueError:
        if scope == "auditor":
            raise
        return None


def claims_from_token(token: str, secret: str, now: datetime) -> TokenClaims:
    try:
        claims = _verified_claims(token, secret)
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError):
        raise _unauthorized() from None
    if not claims.in_force(now):
        raise _unauthorized()
    return claims


def still_valid(claims: TokenClaims, access: GymAccess) -> bool:
    """Issued in the gym's current token generation and, for an auditor token,
    not revoked since."""
    if claims.generation != access.token_generation:
        return False
    return not (claims.scope == "auditor" and claims.token_id in access.revoked_auditor_tokens)


AccessReader = Callable[[UUID], Awaitable[GymAccess | None]]


async def gym_access(gyms: OpenGyms, claims: TokenClaims, read: AccessReader) -> GymAccess | None:
    """What the token's gym accepts: from this process's cache, else read from the
    read model (`read`) and remembered; None for a closed or unknown gym.

    A token of a newer generation than the cached one comes from a password change
    this process has not heard announced yet: the cache is what is out of date, so it
    is read again rather than trusted to refuse. (Only we can sign a generation; one
    the gym never reached costs a read per request and is refused.) Older
    generations are refused from the cache: the generation only ever moves on."""
    access = gyms.access(claims.gym_id)
    if access is not None and claims.generation > access.token_generation:
        gyms.forget(claims.gym_id)
        access = None
    if access is None:
        epoch = gyms.epoch
        access = await read(claims.gym_id)
        if access is not None:
            gyms.remember(claims.gym_id, access, epoch)
    return access


@dataclass(frozen=True)
class CallerGym:
    """The authenticated caller: their gym, its timezone (for "today"), scope and
    the token generation their token belongs to (the gym's current one)."""

    id: UUID
    timezone: str
    scope: Scope = "owner"
    token_generation: int = 0

    def today(self, now: datetime) -> date:
        return local_date(now, self.timezone)


_CALLER = "gymledger.caller"


async def current_reader(request: ASGIConnection[Any, Any, Any, Any]) -> CallerGym:
    """Dependency: owner or auditor of an open gym, or 401. Worked out once per
    request (api/strict.py asks before the route's own dependencies do)."""
    known = request.scope.get("state", {}).get(_CALLER)
    if isinstance(known, CallerGym):
        return known
    caller = await _authenticate(request)
    request.scope.setdefault("state", {})[_CALLER] = caller
    return caller


async def caller_dependency(
    request: ASGIConnection[Any, Any, Any, Any], services: Services
) -> CallerGym:
    """The routes' `caller`. It names `services`, which it does not need, so Litestar
    resolves the two one after the other: two independent dependencies cost an anyio
    task group on every request (a tenth of a millisecond of CPU, bench/README.md)."""
    del services
    return await current_reader(request)


CALLER = Provide(caller_dependency)


async def _authenticate(request: ASGIConnection[Any, Any, Any, Any]) -> CallerGym:
    state: AppState = request.app.state["gymledger"]
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized()
    claims = claims_from_token(token.strip(), state.settings.jwt_secret, state.clock.now())

    async def read(gym_id: UUID) -> GymAccess | None:
        async with state.read_pool.connection() as conn:
            return await open_gym_access(conn, gym_id)

    access = await gym_access(state.open_gyms, claims, read)
    if access is None or not still_valid(claims, access):
        raise _unauthorized()
    return CallerGym(
        id=claims.gym_id,
        timezone=access.timezone,
        scope=claims.scope,
        token_generation=claims.generation,
    )


# Who may call a route, declared on it (or on its controller) as Litestar `opt` and
# enforced for every route by `check_access`, which api/strict.py's before_request hook
# runs first. Not as Litestar guards: those copy the route handler on every call, 4%
# of an API process's CPU under commands (bench/README.md).
OWNER_ONLY: dict[str, Any] = {"access": "owner"}
# Auditors may read a past state (`as_of`, `version`); the present is the owner's.
OWNER_UNLESS_TIME_TRAVEL: dict[str, Any] = {"access": "owner unless time travel"}


async def check_access(request: ASGIConnection[Any, Any, Any, Any], opt: dict[str, Any]) -> None:
    """The route's access rule (`opt` of its handler): 401 without a valid token, 403
    for an auditor where the owner alone may act. Litestar's own OPTIONS answer (the
    methods allowed) inherits a controller's rule; it reveals nothing, and CORS
    preflights carry no token, so it is open."""
    access = opt.get("access")
    if access is None or request.scope.get("method") == "OPTIONS":
        return
    if access == OWNER_UNLESS_TIME_TRAVEL["access"]:
        query = request.query_params
        if "as_of" in query or "version" in query:
            return
    if (await current_reader(request)).scope != "owner":
        raise PermissionDeniedException(detail="Auditor tokens are read-only")


class OwnerController(Controller):
    """Routes of a gym's owner: a valid token is required (401), and an auditor's
    read-only token is refused (403)."""

    dependencies = {"caller": CALLER}
    opt = OWNER_ONLY
    security = SECURED
