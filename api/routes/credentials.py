"""The owner's credentials: changing the password, listing and revoking auditor tokens.

Each change is an event in the gym's stream. Once it is projected, every API
process refuses the tokens it ends (api/auth.py, api/gym_cache.py); the response
is sent after that point, within READ_YOUR_WRITES_TIMEOUT.
"""

from datetime import UTC
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter

from api import rate_limit
from api.auth import CallerGym, current_gym
from api.commanding import execute
from api.errors import responses
from api.openapi import FROM_ZERO, SECURED
from api.schemas import Instant, Password
from api.state import AppState
from commands.gyms import (
    ChangePassword,
    RevokeAuditorAccess,
    change_password,
    revoke_auditor_access,
)
from projections.gyms import AuditorTokenView, auditor_tokens

AnyRequest = Request[Any, Any, Any]
Owner = NamedDependency[CallerGym]
LIST_MAX = 200


class PasswordChangeRequest(msgspec.Struct):
    current_password: str
    new_password: Password


class AuditorTokenItem(msgspec.Struct):
    id: UUID
    granted_at: Instant
    expires_at: Instant
    revoked: bool
    revoked_at: Instant | None

    @classmethod
    def of(cls, view: AuditorTokenView) -> "AuditorTokenItem":
        revoked_at = view.revoked_at
        return cls(
            id=view.id,
            granted_at=view.granted_at.astimezone(UTC),
            expires_at=view.expires_at.astimezone(UTC),
            revoked=revoked_at is not None,
            revoked_at=None if revoked_at is None else revoked_at.astimezone(UTC),
        )


class CredentialsController(Controller):
    path = "/auth"
    tags = ["auth"]
    dependencies = {"caller": Provide(current_gym)}
    security = SECURED

    @post("/password", status_code=204, responses=responses(400, 401, 403, 413, 422, 429, 503))
    async def change_password(
        self, request: AnyRequest, caller: Owner, data: JSONBody[PasswordChangeRequest]
    ) -> None:
        """Every token issued before the change is refused afterwards, this one too:
        log in again with the new password. 400: the current password is wrong."""
        state = AppState.of(request)
        s = state.settings
        # Per gym, so a stolen token cannot be used to guess the current password.
        key = f"password-change:gym:{caller.id}"
        await rate_limit.hit(
            state.redis, s.queue_namespace, key, s.login_attempts_per_email,
            s.login_window_seconds, "Too many password change attempts; try again later",
        )  # fmt: skip
        command = ChangePassword(
            gym_id=caller.id,
            current_password=data.current_password,
            new_password=data.new_password,
            token_generation=caller.token_generation,
        )
        await execute(state, change_password, command, actor=str(caller.id))

    @get("/auditor-tokens", responses=responses(401, 403, 422, 503))
    async def list_auditor_tokens(
        self,
        request: AnyRequest,
        caller: Owner,
        limit: Annotated[int, QueryParameter(ge=1, le=LIST_MAX)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, schema_extra=FROM_ZERO, le=2**31 - 1)] = 0,
    ) -> list[AuditorTokenItem]:
        """Newest grant first; `revoked` also once a password change ended them."""
        async with AppState.of(request).read_pool.connection() as conn:
            rows = await auditor_tokens(conn, caller.id, limit, offset)
        return [AuditorTokenItem.of(row) for row in rows]

    @delete(
        "/auditor-tokens/{token_id:uuid}", status_code=204, responses=responses(401, 403, 404, 503)
    )
    async def revoke_auditor_token(
        self, request: AnyRequest, caller: Owner, token_id: FromPath[UUID]
    ) -> None:
        """204 also when it was revoked already (nothing new is recorded); 404 for an
        id this gym never granted."""
        command = RevokeAuditorAccess(gym_id=caller.id, token_id=token_id)
        await execute(AppState.of(request), revoke_auditor_access, command, actor=str(caller.id))
