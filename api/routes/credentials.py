"""The owner's credentials: changing the password, listing and revoking auditor tokens.

Each change is an event in the gym's stream. Once it is projected, every API
process refuses the tokens it ends (api/auth.py, api/gym_cache.py). `204` says that
point has been reached; when the read model has not shown the change within
READ_YOUR_WRITES_TIMEOUT (a lagging or parked projector) the answer is `202`: the
change is recorded and takes effect when the projector applies it.
"""

from datetime import UTC
from typing import Annotated, Any, Literal, cast
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromPath, QueryParameter

from api import rate_limit
from api.auth import CallerGym, OwnerController
from api.errors import responses
from api.openapi import FROM_ZERO
from api.schemas import Instant
from api.state import AppState, Services
from commands.gyms import ChangePassword, PasswordChange, RevokeAuditorAccess
from projections.gyms import AuditorTokenView, auditor_tokens, revocation_shown_at

AnyRequest = Request[Any, Any, Any]
Owner = NamedDependency[CallerGym]
LIST_MAX = 200


class ChangePending(msgspec.Struct):
    """Answered with 202: the change is in the event log, the read model has not
    applied it yet, so the tokens it ends are still accepted for now."""

    status: Literal["pending"]
    detail: str


PENDING = ChangePending(
    status="pending",
    detail="Recorded; takes effect when the projector applies it. Until then the tokens"
    " it ends are still accepted.",
)
NOT_YET_IN_EFFECT = {
    202: ResponseSpec(
        data_container=ChangePending,
        description="Recorded, not yet in effect: the read model has not applied it within"
        " READ_YOUR_WRITES_TIMEOUT; the tokens it ends keep working until it does",
    )
}


def _answer(in_effect: bool) -> Response[None]:
    if in_effect:
        return Response(None, status_code=204)
    # Litestar lets a route whose status is 204 be annotated only Response[None]; the
    # body is encoded from the value whatever the annotation, and `responses` documents it.
    return cast("Response[None]", Response(PENDING, status_code=202))


PasswordChangeBody = Annotated[PasswordChange, Body(schema_component_key="PasswordChangeRequest")]


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


class CredentialsController(OwnerController):
    path = "/auth"
    tags = ["auth"]

    @post(
        "/password",
        status_code=204,
        responses=responses(400, 401, 403, 413, 422, 429, 503) | NOT_YET_IN_EFFECT,
    )
    async def change_password(
        self, services: Services, caller: Owner, data: PasswordChangeBody
    ) -> Response[None]:
        """Every token issued before the change is refused afterwards, this one too:
        log in again with the new password. 400: the current password is wrong; 202 while
        the change is not yet in effect."""
        s = services.settings
        # Per gym, so a stolen token cannot be used to guess the current password.
        key = f"password-change:gym:{caller.id}"
        await rate_limit.hit(
            services.redis, s.queue_namespace, key, s.login_attempts_per_email,
            s.login_window_seconds, "Too many password change attempts; try again later",
        )  # fmt: skip
        command = ChangePassword(
            gym_id=caller.id, change=data, token_generation=caller.token_generation
        )
        _result, in_effect = await services.run(command, actor=str(caller.id))
        return _answer(in_effect)

    @get("/auditor-tokens", responses=responses(401, 403, 422, 503))
    async def list_auditor_tokens(
        self,
        services: Services,
        caller: Owner,
        limit: Annotated[int, QueryParameter(ge=1, le=LIST_MAX)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, schema_extra=FROM_ZERO, le=2**31 - 1)] = 0,
    ) -> list[AuditorTokenItem]:
        """Newest grant first; `revoked` also once a password change ended them."""
        async with services.read_pool.connection() as conn:
            rows = await auditor_tokens(conn, caller.id, limit, offset)
        return [AuditorTokenItem.of(row) for row in rows]

    @delete(
        "/auditor-tokens/{token_id:uuid}",
        status_code=204,
        responses=responses(401, 403, 404, 503) | NOT_YET_IN_EFFECT,
    )
    async def revoke_auditor_token(
        self, services: Services, caller: Owner, token_id: FromPath[UUID]
    ) -> Response[None]:
        """204 also when it was revoked already (nothing new is recorded); 202 while the
        revocation is not yet in effect; 404 for an id this gym never granted."""
        command = RevokeAuditorAccess(gym_id=caller.id, token_id=token_id)
        result, in_effect = await services.run(command, actor=str(caller.id))
        if result.position == 0:  # revoked before: by a revocation that may not be projected
            in_effect = await _revocation_in_effect(services, caller.id, token_id)
        return _answer(in_effect)


async def _revocation_in_effect(services: AppState, gym_id: UUID, token_id: UUID) -> bool:
    """Whether this process refuses the token: the read model shows it revoked, and
    the watcher has passed the position that was read at (so this process's gym cache
    has dropped what it held from before)."""
    async with services.read_pool.connection() as conn:
        position = await revocation_shown_at(conn, gym_id, token_id, services.watcher.projection)
    if position is None:
        return False
    return await services.watcher.wait_for(position, services.settings.read_your_writes_timeout)
