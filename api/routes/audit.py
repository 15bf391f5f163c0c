"""Auditors' view: history, the event feed, verification, and auditor tokens."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID, uuid4

import anyio.to_thread
import msgspec
import psycopg
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.response import Stream

from api.auth import CallerGym, current_gym, current_reader, issue_token
from api.commanding import execute
from api.state import AppState
from commands.gyms import GrantAuditorAccess, grant_auditor_access
from infra.event_codec import CODEC, UnknownEventType
from projections.audit_chain import verify
from projections.event_log import (
    EventRecord,
    customer_stream,
    describe,
    gym_events,
    gym_stream,
)

AnyRequest = Request[Any, Any, Any]
Reader = NamedDependency[CallerGym]
NDJSON = "application/x-ndjson"
FEED_MAX = 1000


class AuditorTokenRequest(msgspec.Struct):
    expires_in_seconds: int = 24 * 3600


class AuditorTokenResponse(msgspec.Struct):
    access_token: str
    expires_at: datetime
    token_type: str = "bearer"  # noqa: S105 - OAuth2 token type, not a secret
    scope: str = "auditor"


class AuditController(Controller):
    tags = ["audit"]
    dependencies = {"caller": Provide(current_reader)}

    @post("/auth/auditor-tokens", status_code=201, dependencies={"caller": Provide(current_gym)})
    async def issue_auditor_token(
        self, request: AnyRequest, caller: Reader, data: JSONBody[AuditorTokenRequest]
    ) -> AuditorTokenResponse:
        state = AppState.of(request)
        token_id = uuid4()
        if not 1 <= data.expires_in_seconds <= 90 * 24 * 3600:
            raise HTTPException(
                status_code=422, detail="expires_in_seconds must be between 1 and 7776000"
            )
        expires_at = state.clock.now() + timedelta(seconds=data.expires_in_seconds)
        command = GrantAuditorAccess(gym_id=caller.id, token_id=token_id, expires_at=expires_at)
        await execute(state, grant_auditor_access, command, actor=str(caller.id))
        token = issue_token(caller.id, state.settings.jwt_secret, expires_at, "auditor", token_id)
        return AuditorTokenResponse(access_token=token, expires_at=expires_at.astimezone(UTC))

    @get("/gyms/me/history")
    async def gym_history(self, request: AnyRequest, caller: Reader) -> list[EventRecord]:
        async with AppState.of(request).read_pool.connection() as conn:
            stream = await gym_stream(conn, caller.id)
        return [describe(row, event) for row, event in stream]

    @get("/customers/{customer_id:uuid}/history")
    async def customer_history(
        self, request: AnyRequest, caller: Reader, customer_id: FromPath[UUID]
    ) -> list[EventRecord]:
        """Removed customers' history stays readable; other gyms' customers, and
        streams that are not customers, do not exist."""
        async with AppState.of(request).read_pool.connection() as conn:
            stream = await customer_stream(conn, caller.id, customer_id)
        if not stream:
            raise HTTPException(status_code=404, detail="Customer not found")
        return [describe(row, event) for row, event in stream]

    @get("/events")
    async def feed(
        self,
        request: AnyRequest,
        caller: Reader,
        after: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=FEED_MAX)] = 100,
        event_type: Annotated[str | None, QueryParameter(name="type", max_length=100)] = None,
        accept: Annotated[str | None, HeaderParameter(name="Accept")] = None,
    ) -> Response[Any]:
        types = None
        if event_type:
            try:
                types = [CODEC.type_named(event_type).__name__]
            except UnknownEventType:
                detail = f"Unknown event type {event_type!r}"
                raise HTTPException(status_code=422, detail=detail) from None
        async with AppState.of(request).read_pool.connection() as conn:
            rows = await gym_events(conn, caller.id, after, limit, types)
        records = [describe(row) for row in rows]
        if accept and NDJSON in accept:
            return Stream(_ndjson(records), media_type=NDJSON)
        return Response(records)

    @get("/audit/verify")
    async def verify_chain(self, request: AnyRequest, caller: Reader) -> dict[str, Any]:
        state = AppState.of(request)

        def run() -> dict[str, Any]:
            with psycopg.connect(state.settings.database_url) as conn:
                report = verify(conn, state.settings.audit_key.encode(), CODEC, caller.id)
            return report.as_dict()

        return await anyio.to_thread.run_sync(run)


async def _ndjson(records: list[EventRecord]) -> AsyncIterator[bytes]:
    encoder = msgspec.json.Encoder()
    for record in records:
        yield encoder.encode(record) + b"\n"
