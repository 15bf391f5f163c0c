"""Bearer tokens (HS256 JWT) and the dependency that turns one into a gym id."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
from litestar import Request
from litestar.exceptions import NotAuthorizedException

from api.state import AppState
from projections.gyms import gym_is_open

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


async def current_gym_id(request: Request[Any, Any, Any]) -> UUID:
    """Dependency: the gym of a valid token whose gym is still open, or 401."""
    state = AppState.of(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized()
    gym_id = gym_id_from_token(token.strip(), state.settings.jwt_secret)
    async with state.read_pool.connection() as conn:
        if not await gym_is_open(conn, gym_id):
            raise _unauthorized()
    return gym_id
