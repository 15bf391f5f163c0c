"""Memberships of the caller's gym: sold to a customer from a plan, then frozen,
unfrozen, renewed or cancelled. Owners write (every command takes If-Match and
Idempotency-Key); auditors may read, and read any past version (`as_of`, `version`).
Status is derived on the gym's today, in its time zone."""

import builtins
import hashlib
import re
from datetime import date
from typing import Annotated, Literal, get_args
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import Body, FromPath, FromQuery, QueryParameter

from api.auth import CALLER, OWNER_ONLY, CallerGym
from api.errors import responses
from api.headers import IdempotencyKey, IfMatch, expected_version
from api.moments import AS_OF, VERSION, as_of_in_utc, query_error
from api.openapi import FROM_ZERO, SECURED
from api.routes.customers import ETAG_HEADER, MAX_OFFSET, Caller, etag
from api.schemas import MembershipResponse
from api.state import AppState, Services
from commands.application import Command
from commands.memberships import (
    CancelMembership,
    CancelRequest,
    FreezeMembership,
    FreezeRequest,
    Membership,
    NewMembership,
    RenewMembership,
    SellMembership,
    UnfreezeMembership,
    UnfreezeRequest,
    load_membership,
)
from commands.time_travel import membership_as_of
from domain.errors import NotFound
from domain.membership import Status
from projections.customers import get_customer
from projections.memberships import (
    MembershipFilter,
    customer_memberships,
    get_membership,
    list_memberships,
)

SaleBody = Annotated[NewMembership, Body(schema_component_key="MembershipSaleRequest")]
FreezeBody = Annotated[FreezeRequest, Body(schema_component_key="MembershipFreezeRequest")]
UnfreezeBody = Annotated[UnfreezeRequest, Body(schema_component_key="MembershipUnfreezeRequest")]
CancelBody = Annotated[CancelRequest, Body(schema_component_key="MembershipCancelRequest")]
StatusName = Literal["upcoming", "active", "frozen", "expired", "cancelled"]
assert set(get_args(StatusName)) == {s.value for s in Status}

TOTAL_COUNT_HEADER = ResponseHeader(
    name="X-Total-Count",
    description="How many memberships match the filters, whatever limit and offset.",
    documentation_only=True,
    required=True,
)
# A calendar date exactly as JSON Schema's "date" writes one; Litestar's own reading of
# a date parameter also takes `null` for absent, which the document does not allow.
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
ENDS_BEFORE = QueryParameter(
    description="YYYY-MM-DD: only memberships whose `ends_on` is before this day.",
    schema_extra={"format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$(?!\n)"},
)


def _calendar_day(name: str, text: str) -> date:
    try:
        if _DAY.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise query_error(name, "must be a date (YYYY-MM-DD)")


# A command's statuses: 409 when the membership's state refuses it (a freeze over the
# plan's limit or overlapping another, cancelling twice, unfreezing what is not frozen).
COMMAND_STATUSES = responses(401, 403, 404, 409, 412, 413, 422, 503)


def fingerprint(operation: str, target: UUID, body: object) -> str:
    """The digest a retried Idempotency-Key is compared with: the operation, what it
    acts on and the body, so one key is never two different requests."""
    encoded = msgspec.json.encode({"operation": operation, "target": target, "body": body})
    return hashlib.sha256(encoded).hexdigest()


async def _run(
    services: AppState, caller: CallerGym, command: Command, status_code: int = 200
) -> Response[MembershipResponse]:
    """Handle the command; answer with the membership as it left it (or, for a retried
    key, as the first request left it), its status on the gym's today."""
    result, _ = await services.run(command, actor=str(caller.id))
    if isinstance(result.state, Membership):
        held = result.state
    else:
        membership_id, version = result.id, result.version
        held = await services.on_ledger(
            lambda ledger: load_membership(ledger, caller.id, membership_id, version)
        )
    body = MembershipResponse.of(held, caller.today(services.clock.now()))
    return Response(body, status_code=status_code, headers=etag(held.version))


class MembershipsController(Controller):
    tags = ["memberships"]
    dependencies = {"caller": CALLER}
    security = SECURED

    @post(
        "/customers/{customer_id:uuid}/memberships",
        status_code=201,
        opt=OWNER_ONLY,
        responses=responses(401, 403, 404, 409, 413, 422, 503),
        response_headers=[ETAG_HEADER],
    )
    async def sell(
        self,
        services: Services,
        caller: Caller,
        customer_id: FromPath[UUID],
        data: SaleBody,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[MembershipResponse]:
        """Sells the plan to the customer from `starts_on`: the membership keeps the
        plan's terms and price as they are now. `ends_on` is the term's last day (one
        month from 2026-01-15 ends 2026-02-14). 404: no such customer or plan of this
        gym; 409: the plan is retired."""
        command = SellMembership(
            gym_id=caller.id,
            customer_id=customer_id,
            sale=data,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint("sell", customer_id, data),
        )
        return await _run(services, caller, command, status_code=201)

    @get("/customers/{customer_id:uuid}/memberships", responses=responses(401, 404, 422, 503))
    async def of_customer(
        self, services: Services, caller: Caller, customer_id: FromPath[UUID]
    ) -> builtins.list[MembershipResponse]:
        """The customer's memberships, newest sale first."""
        today = caller.today(services.clock.now())
        async with services.read_pool.connection() as conn:
            if await get_customer(conn, caller.id, customer_id) is None:
                raise NotFound("customer")
            held = await customer_memberships(conn, caller.id, customer_id)
        return [MembershipResponse.of(m, today) for m in held]

    @get(
        "/memberships",
        responses=responses(401, 422, 503),
        response_headers=[TOTAL_COUNT_HEADER],
    )
    async def list(
        self,
        services: Services,
        caller: Caller,
        status: FromQuery[StatusName | None] = None,
        ends_before: Annotated[str | None, ENDS_BEFORE] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, schema_extra=FROM_ZERO, le=MAX_OFFSET)] = 0,
    ) -> Response[builtins.list[MembershipResponse]]:  # `list` is this method here
        """The gym's memberships, soonest `ends_on` first: with `status` (on the gym's
        today) and `ends_before` (last day before that date) the front desk's
        "expiring soon" list."""
        today = caller.today(services.clock.now())
        query = MembershipFilter(
            status=None if status is None else Status(status),
            ends_before=None if ends_before is None else _calendar_day("ends_before", ends_before),
            limit=limit,
            offset=offset,
        )
        async with services.read_pool.connection() as conn:
            page, total = await list_memberships(conn, caller.id, query, today)
        return Response(
            [MembershipResponse.of(m, today) for m in page],
            headers={"X-Total-Count": str(total)},
        )

    @get(
        "/memberships/{membership_id:uuid}",
        responses=responses(401, 404, 422, 503),
        response_headers=[ETAG_HEADER],
    )
    async def show(
        self,
        services: Services,
        caller: Caller,
        membership_id: FromPath[UUID],
        as_of: Annotated[str | None, AS_OF] = None,
        version: Annotated[int | None, VERSION] = None,
    ) -> Response[MembershipResponse]:
        """The membership now, or as it was at `as_of` / `version`, rebuilt from the log,
        with the status it had on that day."""
        if as_of is not None or version is not None:
            return await _time_travel(services, caller, membership_id, as_of, version)
        async with services.read_pool.connection() as conn:
            held = await get_membership(conn, caller.id, membership_id)
        if held is None:
            raise NotFound("membership")
        body = MembershipResponse.of(held, caller.today(services.clock.now()))
        return Response(body, headers=etag(held.version))

    @post(
        "/memberships/{membership_id:uuid}/freeze",
        status_code=200,
        opt=OWNER_ONLY,
        responses=COMMAND_STATUSES,
        response_headers=[ETAG_HEADER],
    )
    async def freeze(
        self,
        services: Services,
        caller: Caller,
        membership_id: FromPath[UUID],
        data: FreezeBody,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[MembershipResponse]:
        """Frozen from `starts_on` to `ends_on`, both included; `ends_on` of the
        membership moves later by as many days. The freeze starts within the current
        term; 409: more frozen days in the term than the plan allows, or an overlap
        with another freeze; 422: `ends_on` before `starts_on`."""
        command = FreezeMembership(
            gym_id=caller.id,
            membership_id=membership_id,
            request=data,
            expected_version=expected_version(if_match),
            idempotency_key=idempotency_key,
            fingerprint=fingerprint("freeze", membership_id, data),
        )
        return await _run(services, caller, command)

    @post(
        "/memberships/{membership_id:uuid}/unfreeze",
        status_code=200,
        opt=OWNER_ONLY,
        responses=COMMAND_STATUSES,
        response_headers=[ETAG_HEADER],
    )
    async def unfreeze(
        self,
        services: Services,
        caller: Caller,
        membership_id: FromPath[UUID],
        data: UnfreezeBody,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[MembershipResponse]:
        """Ends the freeze that covers `on` from that day: the membership is extended by
        the days actually frozen. 409: not frozen on `on`."""
        command = UnfreezeMembership(
            gym_id=caller.id,
            membership_id=membership_id,
            request=data,
            expected_version=expected_version(if_match),
            idempotency_key=idempotency_key,
            fingerprint=fingerprint("unfreeze", membership_id, data),
        )
        return await _run(services, caller, command)

    @post(
        "/memberships/{membership_id:uuid}/renew",
        status_code=200,
        opt=OWNER_ONLY,
        responses=COMMAND_STATUSES,
        response_headers=[ETAG_HEADER],
    )
    async def renew(
        self,
        services: Services,
        caller: Caller,
        membership_id: FromPath[UUID],
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[MembershipResponse]:
        """One more term of the same length from the day after `ends_on`, at the plan's
        current price. 409: the membership was cancelled."""
        command = RenewMembership(
            gym_id=caller.id,
            membership_id=membership_id,
            expected_version=expected_version(if_match),
            idempotency_key=idempotency_key,
            fingerprint=fingerprint("renew", membership_id, None),
        )
        return await _run(services, caller, command)

    @post(
        "/memberships/{membership_id:uuid}/cancel",
        status_code=200,
        opt=OWNER_ONLY,
        responses=COMMAND_STATUSES,
        response_headers=[ETAG_HEADER],
    )
    async def cancel(
        self,
        services: Services,
        caller: Caller,
        membership_id: FromPath[UUID],
        data: CancelBody,
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[MembershipResponse]:
        """No access from `effective_on`. 409: cancelled already."""
        command = CancelMembership(
            gym_id=caller.id,
            membership_id=membership_id,
            request=data,
            expected_version=expected_version(if_match),
            idempotency_key=idempotency_key,
            fingerprint=fingerprint("cancel", membership_id, data),
        )
        return await _run(services, caller, command)


async def _time_travel(
    services: AppState,
    caller: CallerGym,
    membership_id: UUID,
    as_of: str | None,
    version: int | None,
) -> Response[MembershipResponse]:
    moment = None if as_of is None else as_of_in_utc(as_of)
    async with services.read_pool.connection() as conn:
        found = await membership_as_of(
            conn, caller.id, membership_id, moment=moment, version=version
        )
    if found is None:
        raise NotFound("membership")
    then, recorded_at = found
    body = MembershipResponse.of(then, caller.today(moment or recorded_at))
    return Response(body, headers=etag(then.version))
