"""Bearer tokens (HS256 JWT) and the dependencies that turn one into a caller.

Two scopes: "owner" (everything for their gym) and "auditor" (read-only access
to history, time travel, the event feed and verification, until it expires).
"""

import functools
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID, uuid4

import jwt
from litestar import Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from api.state import AppState
from domain.validation import local_date
from projections.gyms import open_gym_timezone

_ALGORITHM = "HS256"
TOKEN_CACHE_SIZE = 10_000
Scope = Literal["owner", "auditor"]


def issue_token(
    gym_id: UUID,
    secret: str,
    expires_at: datetime,
    scope: Scope = "owner",
    token_id: UUID | None = None,
) -> str:
    claims = {
        "sub": str(gym_id),
        "iat": datetime.now(UTC),
        "exp": expires_at,
        "scope": scope,
        "jti": str(token_id or uuid4()),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def owner_token(gym_id: UUID, secret: str, ttl_seconds: int) -> str:
    return issue_token(gym_id, secret, datetime.now(UTC) + timedelta(seconds=ttl_seconds))


def _unauthorized() -> NotAuthorizedException:
    return NotAuthorizedException(
        detail="Could not validate credentials", headers={"WWW-Authenticate": "Bearer"}
    )


@functools.lru_cache(maxsize=TOKEN_CACHE_SIZE)
def _verified_claims(token: str, secret: str) -> tuple[UUID, Scope, float]:
    """(gym, scope, expiry) of a token whose signature checks out.

    Cached because clients send the same token with every request and checking it
    costs more than the rest of a typical read; expiry is checked on every use."""
    # Pinning the algorithm list rejects "none" and algorithm-swap tokens.
    claims = jwt.decode(
        token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", "iat", "sub"]}
    )
    scope = claims.get("scope", "owner")
    if scope not in ("owner", "auditor"):
        raise ValueError(scope)
    return UUID(str(claims["sub"])), scope, float(claims["exp"])


def claims_from_token(token: str, secret: str) -> tuple[UUID, Scope]:
    try:
        gym_id, scope, expires = _verified_claims(token, secret)
    except (jwt.PyJWTError, ValueError, TypeError):
        raise _unauthorized() from None
    if expires <= time.time():
        raise _unauthorized()
    return gym_id, scope


@dataclass(frozen=True)
class CallerGym:
    """The authenticated caller: their gym, its timezone (for "today") and scope."""

    id: UUID
    timezone: str
    scope: Scope = "owner"

    def today(self, now: datetime) -> date:
        return local_date(now, self.timezone)


async def current_reader(request: Request[Any, Any, Any]) -> CallerGym:
    """Dependency: owner or auditor of an open gym, or 401."""
    state = AppState.of(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized()
    gym_id, scope = claims_from_token(token.strip(), state.settings.jwt_secret)
    timezone = state.open_gyms.timezone(gym_id)
    if timezone is None:
        epoch = state.open_gyms.epoch
        async with state.read_pool.connection() as conn:
            timezone = await open_gym_timezone(conn, gym_id)
        if timezone is None:
            raise _unauthorized()
        state.open_gyms.remember(gym_id, timezone, epoch)
    return CallerGym(id=gym_id, timezone=timezone, scope=scope)


def require_owner(caller: CallerGym) -> CallerGym:
    if caller.scope != "owner":
        raise PermissionDeniedException(detail="Auditor tokens are read-only")
    return caller


async def current_gym(request: Request[Any, Any, Any]) -> CallerGym:
    """Dependency: the owner of an open gym; 401 without a valid token, 403 for auditors."""
    return require_owner(await current_reader(request))
