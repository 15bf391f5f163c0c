"""The front desk: check a customer in (by id or card), and the check-ins of a day or a
customer. The owner checks in; auditors read the lists (403 on POST)."""

import builtins
import hashlib
from datetime import date
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.auth import CALLER, OWNER_ONLY, CallerGym
from api.errors import responses
from api.headers import IdempotencyKey
from api.openapi import FROM_ZERO, SECURED
from api.routes.customers import MAX_OFFSET
from api.schemas import CheckInResponse
from api.state import Services
from commands.check_ins import CheckInRecorded, NewCheckIn, RecordCheckIn, identified_by
from domain.errors import NotFound
from domain.validation import local_day_bounds
from projections.check_ins import (
    CheckInRow,
    check_ins_between,
    check_ins_of,
    listed_membership_ids,
)
from projections.customers import get_customer

Caller = NamedDependency[CallerGym]
Limit = Annotated[int, QueryParameter(ge=1, le=200)]
Offset = Annotated[int, QueryParameter(ge=0, schema_extra=FROM_ZERO, le=MAX_OFFSET)]
TOTAL_COUNT_HEADER = ResponseHeader(
    name="X-Total-Count",
    description="How many check-ins match, whatever limit and offset.",
    documentation_only=True,
    required=True,
)


def _page(rows: list[CheckInRow], total: int) -> Response[list[CheckInResponse]]:
    return Response(
        [CheckInResponse.of(row) for row in rows], headers={"X-Total-Count": str(total)}
    )


class CheckInsController(Controller):
    path = "/"
    tags = ["check-ins"]
    dependencies = {"caller": CALLER}
    security = SECURED

    @post(
        "/check-ins",
        status_code=201,
        opt=OWNER_ONLY,
        responses=responses(401, 403, 404, 413, 422, 503),
    )
    async def check_in(
        self,
        services: Services,
        caller: Caller,
        data: JSONBody[NewCheckIn],
        idempotency_key: IdempotencyKey = None,
    ) -> CheckInResponse:
        """Exactly one of `customer_id` and `card_code`. Allowed only when the owner has
        not switched the customer off and a membership of theirs is active today (the
        gym's day); otherwise `reason` says why, and the denied attempt is recorded too.
        404: an unknown card, or not a customer of this gym."""
        named = identified_by(data)  # checked before the read model is asked about it
        by_id = named if isinstance(named, UUID) else None
        by_card = named if isinstance(named, str) else None
        async with services.read_pool.connection() as conn:
            memberships = await listed_membership_ids(conn, caller.id, by_id, by_card)
        command = RecordCheckIn(
            gym_id=caller.id,
            request=data,
            membership_ids=memberships,
            idempotency_key=idempotency_key,
            fingerprint=hashlib.sha256(msgspec.json.encode(data)).hexdigest(),
        )
        result, _ = await services.run(command, actor=str(caller.id))
        if not isinstance(result.state, CheckInRecorded):
            raise TypeError("RecordCheckIn answers with the check-in, recorded or replayed")
        return CheckInResponse.of(CheckInRow.of(result.state))

    @get(
        "/check-ins",
        responses=responses(401, 422, 503),
        response_headers=[TOTAL_COUNT_HEADER],
    )
    async def day(
        self,
        services: Services,
        caller: Caller,
        on: FromQuery[date | None] = None,
        allowed: FromQuery[bool | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Response[builtins.list[CheckInResponse]]:
        """The check-ins of day `on` in the gym's time zone (default: the gym's today),
        newest first; `allowed` keeps only the allowed (true) or the denied (false)."""
        day = on or caller.today(services.clock.now())
        bounds = local_day_bounds(day, caller.timezone)
        if bounds is None:  # a day no instant of the log can fall on
            return _page([], 0)
        async with services.read_pool.connection() as conn:
            rows, total = await check_ins_between(
                conn, caller.id, *bounds, allowed=allowed, limit=limit, offset=offset
            )
        return _page(rows, total)

    @get(
        "/customers/{customer_id:uuid}/check-ins",
        responses=responses(401, 404, 422, 503),
        response_headers=[TOTAL_COUNT_HEADER],
    )
    async def of_customer(
        self,
        services: Services,
        caller: Caller,
        customer_id: FromPath[UUID],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Response[builtins.list[CheckInResponse]]:
        """The customer's check-ins, newest first, denied ones too."""
        async with services.read_pool.connection() as conn:
            if await get_customer(conn, caller.id, customer_id) is None:
                raise NotFound("customer")
            rows, total = await check_ins_of(conn, caller.id, customer_id, limit, offset)
        return _page(rows, total)
