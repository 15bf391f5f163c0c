"""Signup, login and the owner's own gym (`/gyms/me`)."""

import hashlib
import logging
from typing import Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.params import JSONBody, URLEncodedBody

from api import rate_limit
from api.auth import CallerGym, current_gym, owner_token
from api.commanding import execute
from api.errors import responses
from api.headers import IdempotencyKey
from api.openapi import SECURED
from api.rate_limit import client_address, limit_per_address
from api.schemas import GymPatchRequest, GymResponse, LoginForm, SignupRequest, TokenResponse
from api.state import AppState
from commands.gyms import (
    CloseGym,
    RegisterGym,
    RehashPassword,
    UpdateGymProfile,
    close_gym,
    load_gym,
    register_gym,
    rehash_password,
    update_gym_profile,
)
from domain.errors import InvalidValue
from domain.gym import ProfileChanges
from infra.passwords import needs_rehash, verify_password
from projections.gyms import find_login, get_gym

AnyRequest = Request[Any, Any, Any]
log = logging.getLogger("gymledger.api")


async def _gym_response(state: AppState, gym_id: UUID, visible: bool) -> GymResponse:
    if visible:
        async with state.read_pool.connection() as conn:
            view = await get_gym(conn, gym_id)
        if view is not None:
            return GymResponse.of(view)
    # The projector lags or is down: the command is stored, answer from the log.
    return GymResponse.of(await state.on_ledger(load_gym, gym_id))


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/signup", status_code=201, responses=responses(400, 413, 422, 429, 503))
    async def signup(
        self,
        request: AnyRequest,
        data: JSONBody[SignupRequest],
        idempotency_key: IdempotencyKey = None,
    ) -> GymResponse:
        """400: the email is registered already. 429 only where signups are limited
        per address (SIGNUP_ATTEMPTS_PER_ADDRESS)."""
        state = AppState.of(request)
        await limit_per_address(state, request, "signup", "Too many signups; try again later")
        without_password = msgspec.structs.replace(data, password="")
        command = RegisterGym(
            **{f: getattr(data, f) for f in data.__struct_fields__},
            idempotency_key=idempotency_key,
            fingerprint=hashlib.sha256(msgspec.json.encode(without_password)).hexdigest(),
        )
        result, _ = await execute(state, register_gym, command, actor="anonymous")
        # Version 1 is what this signup created: a retried key gets the very same body.
        gym = await state.on_ledger(load_gym, result.id, 1)
        return GymResponse.of(gym)

    @post("/login", status_code=200, responses=responses(400, 413, 422, 429, 503))
    async def login(
        self,
        request: AnyRequest,
        data: URLEncodedBody[LoginForm],
    ) -> TokenResponse:
        """400: no such owner, or the wrong password (the same answer for both)."""
        state = AppState.of(request)
        s = state.settings
        if "\x00" in data.username:  # PostgreSQL text cannot hold NUL, so no email has one
            raise InvalidValue("username", "must not contain NUL")
        email = data.username.strip().lower()
        for key, limit in (
            (f"login:email:{email}", s.login_attempts_per_email),
            (f"login:address:{client_address(request)}", s.login_attempts_per_address),
        ):
            await rate_limit.hit(state.redis, s.queue_namespace, key, limit, s.login_window_seconds)
        async with state.read_pool.connection() as conn:
            found = await find_login(conn, email)
        password_hash = found.password_hash if found else None
        # argon2 is CPU-heavy by design: keep it off the event loop.
        ok = await anyio.to_thread.run_sync(verify_password, password_hash, data.password)
        if not ok or found is None:
            raise HTTPException(status_code=400, detail="Incorrect email or password")
        if needs_rehash(found.password_hash):
            await _rehash(state, found.gym_id, data.password, found.password_hash)
        # The generation read with the hash just verified: should the password change
        # meanwhile, this token is of the old generation and refused like the others.
        token = owner_token(
            found.gym_id, s.jwt_secret, s.jwt_ttl_seconds, found.token_generation, state.clock.now()
        )
        return TokenResponse(access_token=token)


async def _rehash(state: AppState, gym_id: UUID, password: str, verified_hash: str) -> None:
    """Replace an outdated hash (infra/passwords.py). The login has succeeded either
    way: if this fails, say against a concurrent login's rehash, the next login retries."""
    command = RehashPassword(gym_id=gym_id, password=password, verified_hash=verified_hash)
    try:
        await execute(state, rehash_password, command, actor=str(gym_id))
    except Exception:
        log.warning("password rehash failed; the next login retries", exc_info=True)


class MyGymController(Controller):
    path = "/gyms/me"
    tags = ["gyms"]
    dependencies = {"caller": Provide(current_gym)}
    security = SECURED

    @get("", responses=responses(401, 403, 503))
    async def show(self, request: AnyRequest, caller: NamedDependency[CallerGym]) -> GymResponse:
        return await _gym_response(AppState.of(request), caller.id, visible=True)

    @patch("", responses=responses(400, 401, 403, 413, 422, 503))
    async def update(
        self,
        request: AnyRequest,
        caller: NamedDependency[CallerGym],
        data: JSONBody[GymPatchRequest],
    ) -> GymResponse:
        """400: the new email is another gym's."""
        state = AppState.of(request)
        changes = ProfileChanges(**{f: getattr(data, f) for f in data.__struct_fields__})
        command = UpdateGymProfile(gym_id=caller.id, changes=changes)
        _result, visible = await execute(state, update_gym_profile, command, actor=str(caller.id))
        return await _gym_response(state, caller.id, visible)

    @delete("", status_code=204, responses=responses(401, 403, 503))
    async def close(self, request: AnyRequest, caller: NamedDependency[CallerGym]) -> None:
        state = AppState.of(request)
        await execute(state, close_gym, CloseGym(gym_id=caller.id), actor=str(caller.id))
