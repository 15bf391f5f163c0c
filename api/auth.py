"""Bearer tokens (HS256 JWT) and the dependency that turns one into a gym id."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
from litestar import Request
from litestar.exceptions import NotAuthorizedException

from api.state import AppState
from domain.validation import local_date
from projections.gyms import open_gym_timezone

_ALGORITHM = "HS256"


def issue_token(gym_id: UUID, secret: str, ttl_seconds: int, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(gym_id),
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl_seconds),
        "scope": "owner",
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def _unauthorized() -> NotAuthorizedException:
    return NotAuthorizedException(
        detail="Could not validate credentials", headers={"WWW-Authenticate": "Bearer"}
    )


def gym_id_from_token(token: str, secret: str) -> UUID:
    try:
        # Pinning the algorithm list rejects "none" and algorithm-swap tokens.
        claims = jwt.decode(
            token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", "iat", "sub"]}
        )
        return UUID(str(claims["sub"]))
    except (jwt.PyJWTError, ValueError):
        raise _unauthorized() from None


@dataclass(frozen=True)
class CallerGym:
    """The authenticated caller: their gym and its timezone (for "today")."""

    id: UUID
    timezone: str

    def today(self, now: datetime) -> date:
        return local_date(now, self.timezone)


async def current_gym(request: Request[Any, Any, Any]) -> CallerGym:
    """Dependency: the gym of a valid token whose gym is still open, or 401."""
    state = AppState.of(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized()
    gym_id = gym_id_from_token(token.strip(), state.settings.jwt_secret)
    async with state.read_pool.connection() as conn:
        timezone = await open_gym_timezone(conn, gym_id)
    if timezone is None:
        raise _unauthorized()
    return CallerGym(id=gym_id, timezone=timezone)
