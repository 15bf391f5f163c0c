"""Signup, login and the owner's own gym (`/gyms/me`)."""

import hashlib
import logging
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import Body, URLEncodedBody

from api import rate_limit
from api.auth import CallerGym, OwnerController, owner_token
from api.errors import responses
from api.headers import IdempotencyKey
from api.rate_limit import client_address, limit_per_address
from api.schemas import GymResponse, LoginForm, TokenResponse
from api.state import AppState, Services
from commands.gyms import (
    CloseGym,
    NewGym,
    ProfileChanges,
    RegisterGym,
    RehashPassword,
    UpdateGymProfile,
    load_gym,
)
from domain.errors import InvalidLogin, InvalidValue
from projections.gyms import find_login, get_gym, view_of

# The request bodies keep the names the earlier service's clients know them by.
SignupBody = Annotated[NewGym, Body(schema_component_key="SignupRequest")]
GymPatchBody = Annotated[ProfileChanges, Body(schema_component_key="GymPatchRequest")]
AnyRequest = Request[Any, Any, Any]
log = logging.getLogger("gymledger.api")


async def _gym_response(services: AppState, gym_id: UUID, visible: bool) -> GymResponse:
    if visible:
        async with services.read_pool.connection() as conn:
            view = await get_gym(conn, gym_id)
        if view is not None:
            return GymResponse.of(view)
    # The projector lags or is down: the command is stored, answer from the log.
    return GymResponse.of(
        view_of(await services.on_ledger(lambda ledger: load_gym(ledger, gym_id)))
    )


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @post("/signup", status_code=201, responses=responses(400, 413, 422, 429, 503))
    async def signup(
        self,
        request: AnyRequest,
        services: Services,
        data: SignupBody,
        idempotency_key: IdempotencyKey = None,
    ) -> GymResponse:
        """400: the email is registered already. 429 only where signups are limited
        per address (SIGNUP_ATTEMPTS_PER_ADDRESS)."""
        await limit_per_address(services, request, "signup", "Too many signups; try again later")
        without_password = msgspec.structs.replace(data, password="")
        command = RegisterGym(
            signup=data,
            idempotency_key=idempotency_key,
            fingerprint=hashlib.sha256(msgspec.json.encode(without_password)).hexdigest(),
        )
        result, _ = await services.run(command, actor="anonymous")
        # Version 1 is what this signup created: a retried key gets the very same body.
        gym = await services.on_ledger(lambda ledger: load_gym(ledger, result.id, 1))
        return GymResponse.of(view_of(gym))

    @post("/login", status_code=200, responses=responses(400, 413, 422, 429, 503))
    async def login(
        self,
        request: AnyRequest,
        services: Services,
        data: URLEncodedBody[LoginForm],
    ) -> TokenResponse:
        """400: no such owner, or the wrong password (the same answer for both)."""
        s = services.settings
        if "\x00" in data.username:  # PostgreSQL text cannot hold NUL, so no email has one
            raise InvalidValue("username", "must not contain NUL")
        email = data.username.strip().lower()
        for key, limit in (
            (f"login:email:{email}", s.login_attempts_per_email),
            (f"login:address:{client_address(request)}", s.login_attempts_per_address),
        ):
            await rate_limit.hit(
                services.redis, s.queue_namespace, key, limit, s.login_window_seconds
            )
        async with services.read_pool.connection() as conn:
            found = await find_login(conn, email)
        password_hash = found.password_hash if found else None
        # argon2 is CPU-heavy by design: keep it off the event loop.
        passwords = services.runtime.passwords
        ok = await anyio.to_thread.run_sync(passwords.verify, password_hash, data.password)
        if not ok or found is None:
            raise InvalidLogin()
        if passwords.needs_rehash(found.password_hash):
            await _rehash(services, found.gym_id, data.password, found.password_hash)
        # The generation read with the hash just verified: should the password change
        # meanwhile, this token is of the old generation and refused like the others.
        token = owner_token(
            found.gym_id,
            s.jwt_secret,
            s.jwt_ttl_seconds,
            found.token_generation,
            services.clock.now(),
        )
        return TokenResponse(access_token=token)


async def _rehash(services: AppState, gym_id: UUID, password: str, verified_hash: str) -> None:
    """Replace an outdated hash (infra/passwords.py). The login has succeeded either
    way: if this fails, say against a concurrent login's rehash, the next login retries."""
    command = RehashPassword(gym_id=gym_id, password=password, verified_hash=verified_hash)
    try:
        await services.run(command, actor=str(gym_id))
    except Exception:
        log.warning("password rehash failed; the next login retries", exc_info=True)


class MyGymController(OwnerController):
    path = "/gyms/me"
    tags = ["gyms"]

    @get("", responses=responses(401, 403, 503))
    async def show(self, services: Services, caller: NamedDependency[CallerGym]) -> GymResponse:
        return await _gym_response(services, caller.id, visible=True)

    @patch("", responses=responses(400, 401, 403, 413, 422, 503))
    async def update(
        self,
        services: Services,
        caller: NamedDependency[CallerGym],
        data: GymPatchBody,
    ) -> GymResponse:
        """400: the new email is another gym's."""
        command = UpdateGymProfile(gym_id=caller.id, changes=data)
        _result, visible = await services.run(command, actor=str(caller.id))
        return await _gym_response(services, caller.id, visible)

    @delete("", status_code=204, responses=responses(401, 403, 503))
    async def close(self, services: Services, caller: NamedDependency[CallerGym]) -> None:
        await services.run(CloseGym(gym_id=caller.id), actor=str(caller.id))
