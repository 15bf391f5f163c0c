"""Auditors' view: history, the event feed, verification, and auditor tokens."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.response import Stream

from api import rate_limit
from api.auth import CALLER, OWNER_ONLY, CallerGym, issue_token
from api.errors import responses
from api.openapi import FROM_ZERO, SECURED
from api.rate_limit import limit_per_address
from api.schemas import Instant
from api.state import AppState, Services
from commands.gyms import GrantAuditorAccess
from domain.errors import InvalidValue, NotFound
from infra.event_codec import CODEC, UnknownEventType
from infra.signing import ALGORITHM, public_pem, raw_public_hex
from projections.audit_verify import verify_checkpoint, verify_gym
from projections.checkpoints import Checkpoint, latest_checkpoint
from projections.event_log import (
    EventRecord,
    customer_stream,
    describe,
    gym_events,
    gym_stream,
    membership_stream,
    plan_stream,
)

AnyRequest = Request[Any, Any, Any]
Reader = NamedDependency[CallerGym]
NDJSON = "application/x-ndjson"
FEED_MAX = 1000
TOKEN_MAX_SECONDS = 90 * 24 * 3600
EVENT_TYPE_NAMES = sorted(cls.__name__ for cls in CODEC.event_types)


class AuditorTokenRequest(msgspec.Struct):
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=1, le=TOKEN_MAX_SECONDS)] = 24 * 3600


class AuditorTokenResponse(msgspec.Struct):
    access_token: str
    expires_at: Instant
    token_type: str = "bearer"  # noqa: S105 - OAuth2 token type, not a secret
    scope: str = "auditor"


class PublicKey(msgspec.Struct):
    """`public_key`: the 32 raw bytes in hex; `pem`: the same key as SubjectPublicKeyInfo."""

    key_id: str
    algorithm: str
    public_key: str
    pem: str
    signing: bool  # the key that signs new checkpoints (the others are retired)


class Problem(msgspec.Struct):
    """One finding: what is wrong (altered, deleted, inserted, reordered, ...), at
    which log position, and how it shows."""

    kind: str
    position: int
    detail: str


class VerificationReport(msgspec.Struct):
    ok: bool
    gym_id: UUID | None
    events_checked: int
    checkpoints_checked: int
    signed_through: int
    unsigned_events: int
    pending_events: int
    first_problem: Problem | None
    problems_total: int
    problems: list[Problem]  # the first hundred, by position


@dataclass
class AlsoAsNDJSON(Operation):
    """The feed's 200 is also served as NDJSON (Accept: application/x-ndjson): the
    items of the JSON array, one per line."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content:
            ok.content[NDJSON] = OpenAPIMediaType(schema=ok.content["application/json"].schema)


async def _verification_allowed(services: AppState, caller: CallerGym) -> None:
    s = services.settings
    await rate_limit.hit(
        services.redis,
        s.queue_namespace,
        f"audit-verify:{caller.id}",
        s.audit_verifications_per_minute,
        60,
        detail="Too many verifications for this gym; try again later",
    )


class AuditController(Controller):
    tags = ["audit"]
    dependencies = {"caller": CALLER}
    security = SECURED

    @post(
        "/auth/auditor-tokens",
        status_code=201,
        opt=OWNER_ONLY,
        responses=responses(400, 401, 403, 413, 422, 429, 503),
    )
    async def issue_auditor_token(
        self,
        request: AnyRequest,
        services: Services,
        caller: Reader,
        data: JSONBody[AuditorTokenRequest],
    ) -> AuditorTokenResponse:
        """A read-only token for an auditor (owner only). 429 only where grants are
        limited per address (SIGNUP_ATTEMPTS_PER_ADDRESS)."""
        await limit_per_address(
            services, request, "auditor-grant", "Too many auditor tokens; try again later"
        )
        token_id = uuid4()
        issued_at = services.clock.now()
        expires_at = issued_at + timedelta(seconds=data.expires_in_seconds)
        # Issued in the owner's token's generation, which the write side checks is current.
        generation = caller.token_generation
        command = GrantAuditorAccess(
            gym_id=caller.id, token_id=token_id, expires_at=expires_at, token_generation=generation
        )
        await services.run(command, actor=str(caller.id))
        secret = services.settings.jwt_secret
        token = issue_token(
            caller.id, secret, expires_at, "auditor", token_id, generation, issued_at=issued_at
        )
        return AuditorTokenResponse(access_token=token, expires_at=expires_at.astimezone(UTC))

    @get("/gyms/me/history", responses=responses(401, 503))
    async def gym_history(self, services: Services, caller: Reader) -> list[EventRecord]:
        async with services.read_pool.connection() as conn:
            stream = await gym_stream(conn, caller.id)
        return [describe(row) for row in stream]

    @get("/customers/{customer_id:uuid}/history", responses=responses(401, 404, 503))
    async def customer_history(
        self, services: Services, caller: Reader, customer_id: FromPath[UUID]
    ) -> list[EventRecord]:
        """Removed customers' history stays readable; other gyms' customers, and
        streams that are not customers, do not exist."""
        async with services.read_pool.connection() as conn:
            stream = await customer_stream(conn, caller.id, customer_id)
        if not stream:
            raise NotFound("customer")
        return [describe(row) for row in stream]

    @get("/plans/{plan_id:uuid}/history", responses=responses(401, 404, 503))
    async def plan_history(
        self, services: Services, caller: Reader, plan_id: FromPath[UUID]
    ) -> list[EventRecord]:
        """Retired plans' history stays readable; other gyms' plans do not exist."""
        async with services.read_pool.connection() as conn:
            stream = await plan_stream(conn, caller.id, plan_id)
        if not stream:
            raise NotFound("plan")
        return [describe(row) for row in stream]

    @get("/memberships/{membership_id:uuid}/history", responses=responses(401, 404, 503))
    async def membership_history(
        self, services: Services, caller: Reader, membership_id: FromPath[UUID]
    ) -> list[EventRecord]:
        """Also of a removed customer's memberships; other gyms' do not exist."""
        async with services.read_pool.connection() as conn:
            stream = await membership_stream(conn, caller.id, membership_id)
        if not stream:
            raise NotFound("membership")
        return [describe(row) for row in stream]

    @get(
        "/events",
        responses={
            # The body is built by hand (JSON or NDJSON): this is its schema.
            200: ResponseSpec(
                list[EventRecord],
                generate_examples=False,
                description="The gym's events after `after`, in log order.",
            ),
            **responses(401, 422, 503),
        },
        operation_class=AlsoAsNDJSON,
    )
    async def feed(
        self,
        services: Services,
        caller: Reader,
        after: Annotated[int, QueryParameter(ge=0, schema_extra=FROM_ZERO, le=2**62)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=FEED_MAX)] = 100,
        event_type: Annotated[
            str | None, QueryParameter(name="type", schema_extra={"enum": EVENT_TYPE_NAMES})
        ] = None,
        # Content negotiation: OpenAPI describes it by the response's media types.
        accept: Annotated[
            str | None, HeaderParameter(name="Accept", include_in_schema=False)
        ] = None,
    ) -> Response[Any]:
        """Only events of one type with `type`."""
        types = None
        if event_type is not None:
            try:
                types = [CODEC.type_named(event_type).__name__]
            except UnknownEventType:
                raise InvalidValue("type", "is no event type", "query") from None
        async with services.read_pool.connection() as conn:
            rows = await gym_events(conn, caller.id, after, limit, types)
        records = [describe(row) for row in rows]
        if accept and NDJSON in accept:
            return Stream(_ndjson(records), media_type=NDJSON)
        return Response(records)

    @get("/audit/keys", responses=responses(401, 503))
    async def public_keys(self, services: Services, caller: Reader) -> list[PublicKey]:
        ring = services.settings.key_ring()
        # The signing key comes first in the ring; a process given public keys only
        # (AUDIT_PUBLIC_KEYS, current key first) names the current one the same way.
        signing = next(iter(ring.public), None)
        return [
            PublicKey(kid, ALGORITHM, raw_public_hex(key), public_pem(key), kid == signing)
            for kid, key in ring.public.items()
        ]

    @get("/audit/checkpoint", responses=responses(401, 404, 503))
    async def checkpoint(self, services: Services, caller: Reader) -> Checkpoint:
        """The gym's latest signed checkpoint: keep it, and later POST it to /audit/verify."""
        async with services.read_pool.connection() as conn:
            found = await latest_checkpoint(conn, caller.id)
        if found is None:
            raise NotFound("checkpoint", "No signed checkpoint yet")
        return found

    @get("/audit/verify", responses=responses(401, 429, 503))
    async def verify_chain(self, services: Services, caller: Reader) -> VerificationReport:
        await _verification_allowed(services, caller)
        ring = services.settings.key_ring()
        report = await services.verifications.run(lambda conn: verify_gym(conn, ring, caller.id))
        return msgspec.convert(report.as_dict(), VerificationReport)

    @post("/audit/verify", status_code=200, responses=responses(400, 401, 413, 422, 429, 503))
    async def verify_kept_checkpoint(
        self, services: Services, caller: Reader, data: JSONBody[Checkpoint]
    ) -> VerificationReport:
        """Does the log still extend a checkpoint kept earlier, and does all of it
        verify? 422 for a checkpoint of another gym."""
        if data.gym_id != caller.id:
            raise InvalidValue("gym_id", "is another gym's")
        await _verification_allowed(services, caller)
        ring = services.settings.key_ring()
        report = await services.verifications.run(lambda conn: verify_checkpoint(conn, ring, data))
        return msgspec.convert(report.as_dict(), VerificationReport)


async def _ndjson(records: list[EventRecord]) -> AsyncIterator[bytes]:
    encoder = msgspec.json.Encoder()
    for record in records:
        yield encoder.encode(record) + b"\n"
