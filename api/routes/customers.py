"""Customers of the caller's gym: create, list and search, read, update, remove."""

import asyncio
import builtins
import hashlib
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.params import Body, FromPath, FromQuery, QueryParameter

from api import cursors
from api.auth import CALLER, OWNER_ONLY, OWNER_UNLESS_TIME_TRAVEL, CallerGym
from api.errors import responses
from api.headers import IdempotencyKey, IfMatch, expected_version
from api.moments import AS_OF, VERSION, as_of_in_utc, query_error
from api.openapi import FROM_ZERO, SECURED
from api.schemas import NO_NUL_PATTERN, CustomerResponse
from api.state import AppState, Services
from commands.customers import (
    ChangeCustomer,
    Customer,
    CustomerDetails,
    NewCustomer,
    RegisterCustomer,
    RemoveCustomer,
    load_customer,
)
from commands.time_travel import customer_as_of, customer_memberships_as_of
from domain.errors import InvalidQuery, NotFound
from domain.membership import Membership
from projections.check_ins import NO_VISITS, VISIT_WINDOW, Visits, visits_of
from projections.customers import (
    CustomerFilter,
    CustomerRow,
    count_customers,
    get_customer,
    list_customers,
    row_of,
)
from projections.memberships import customer_memberships, memberships_of_customers

AnyRequest = Request[Any, Any, Any]
Caller = NamedDependency[CallerGym]
MAX_OFFSET = 1_000_000_000
NO_NUL = {"pattern": NO_NUL_PATTERN}


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


# Their formats are in api/openapi.py (RESPONSE_HEADER_SCHEMAS).
ETAG_HEADER = ResponseHeader(
    name="ETag",
    description='The version shown, as an entity tag ("3"), for If-Match.',
    documentation_only=True,
    required=True,
)
NEXT_CURSOR_HEADER = ResponseHeader(
    name="X-Next-Cursor",
    description="Where the next page starts: pass it as `after`. Absent on the last page.",
    documentation_only=True,
    required=False,
)
AFTER = QueryParameter(
    description="X-Next-Cursor of the page before: list the customers after it (stays"
    " exact while customers are added, unlike offset).",
    schema_extra={"pattern": cursors.CURSOR_PATTERN},
)
TOTAL_COUNT_HEADER = ResponseHeader(
    name="X-Total-Count",
    description="How many customers match the filters, whatever limit and offset.",
    documentation_only=True,
    required=True,
)


# The request bodies keep the names the earlier service's clients know them by.
CreateBody = Annotated[NewCustomer, Body(schema_component_key="CustomerCreateRequest")]
PatchBody = Annotated[CustomerDetails, Body(schema_component_key="CustomerPatchRequest")]


async def _of_rows(
    conn: Any, gym_id: UUID, rows: list[CustomerRow], now: datetime
) -> tuple[dict[UUID, list[Membership]], dict[UUID, Visits]]:
    """The memberships and visits of read-table rows, asking only about customers whose
    row says they have some: a page of customers who hold no membership and were not in
    during the last 30 days costs no query beyond its own (bench/README.md, issue 15)."""
    held = await memberships_of_customers(conn, gym_id, [r.id for r in rows if r.holds_memberships])
    since = now - VISIT_WINDOW
    recent = [r.id for r in rows if r.last_check_in_at is not None and r.last_check_in_at > since]
    visits = await visits_of(conn, gym_id, recent, now)
    for r in rows:  # their last visit is older than the window: none in it
        if r.last_check_in_at is not None and r.id not in visits:
            visits[r.id] = Visits(last_at=r.last_check_in_at)
    return held, visits


async def _visits_of(conn: Any, gym_id: UUID, customer_id: UUID, until: datetime) -> Visits:
    """One customer's visits as of `until`, counted when read."""
    return (await visits_of(conn, gym_id, [customer_id], until)).get(customer_id, NO_VISITS)


async def _customer_response(
    services: AppState,
    caller: CallerGym,
    customer_id: FromPath[UUID],
    visible: bool,
    version: int | None = None,
) -> CustomerResponse:
    now = services.clock.now()
    today = caller.today(now)
    async with services.read_pool.connection() as conn:
        if visible and version is None:
            row = await get_customer(conn, caller.id, customer_id)
            if row is not None:  # as a list shows it: one query unless it has memberships or visits
                held_by, visits_by = await _of_rows(conn, caller.id, [row], now)
                return CustomerResponse.of(
                    row, today, held_by.get(row.id, ()), visits_by.get(row.id, NO_VISITS)
                )
        held = await customer_memberships(conn, caller.id, customer_id)
        visits = await _visits_of(conn, caller.id, customer_id, now)
    # Projector lagging, or a past version asked for: rebuild from the event log.
    stored = await services.on_ledger(
        lambda ledger: load_customer(ledger, caller.id, customer_id, version)
    )
    return CustomerResponse.of(row_of(stored), today, held, visits)


async def _time_travel(
    services: AppState,
    caller: CallerGym,
    customer_id: UUID,
    as_of: str | None,
    version: int | None,
) -> Response[CustomerResponse]:
    moment = None if as_of is None else as_of_in_utc(as_of)
    async with services.read_pool.connection() as conn:
        found = await customer_as_of(conn, caller.id, customer_id, moment=moment, version=version)
        if found is None:
            raise NotFound("customer")
        then, recorded_at = found
        held = await customer_memberships_as_of(conn, caller.id, customer_id, moment or recorded_at)
        visits = await _visits_of(conn, caller.id, customer_id, moment or recorded_at)
    body = CustomerResponse.of(row_of(then), caller.today(moment or recorded_at), held, visits)
    return Response(body, headers=etag(then.version))


COUNT_CACHE_SIZE = 10_000


async def _count(
    services: AppState, conn: Any, gym_id: UUID, query: CustomerFilter, today: date
) -> int:
    """X-Total-Count costs a scan of every match on a large gym, so it is cached per
    read-model position (every change to the read model moves it). A caller's own
    writes are always counted: their response waited until the watcher passed them.
    Others' changes show within the watcher's notification delay (milliseconds)."""
    key = (
        gym_id,
        msgspec.structs.replace(query, limit=0, offset=0, after=None),
        today,
        services.watcher.position,
    )
    if (cached := services.counts.get(key)) is not None:
        services.counts.move_to_end(key)
        return cached
    # Requests that miss together share one scan: after any write every list of a gym
    # misses, and 16 concurrent scans of 100,000 rows took PostgreSQL 2.6 s at once.
    while (in_flight := services.counting.get(key)) is not None:
        shared = await asyncio.shield(in_flight)
        if shared is not None:
            return shared
        # The request counting it failed or went away: the first waiter to wake counts.
    in_flight = services.counting[key] = asyncio.get_running_loop().create_future()
    total = None
    try:
        total = await count_customers(conn, gym_id, query, today)
    finally:
        del services.counting[key]
        in_flight.set_result(total)
    services.counts[key] = total
    if len(services.counts) > COUNT_CACHE_SIZE:
        services.counts.popitem(last=False)
    return total


class CustomersController(Controller):
    path = "/customers"
    tags = ["customers"]
    dependencies = {"caller": CALLER}
    security = SECURED

    @post(
        "",
        status_code=201,
        opt=OWNER_ONLY,
        responses=responses(400, 401, 403, 409, 413, 422, 503),
    )
    async def create(
        self,
        services: Services,
        caller: Caller,
        data: CreateBody,
        idempotency_key: IdempotencyKey = None,
    ) -> CustomerResponse:
        command = RegisterCustomer(
            gym_id=caller.id,
            details=data,
            idempotency_key=idempotency_key,
            fingerprint=hashlib.sha256(msgspec.json.encode(data)).hexdigest(),
        )
        result, _ = await services.run(command, actor=str(caller.id))
        if isinstance(result.state, Customer):  # just created: answer from it
            return CustomerResponse.of(row_of(result.state), caller.today(services.clock.now()))
        # A retried key: version 1 is what the first POST created, so it gets the same body.
        return await _customer_response(services, caller, result.id, visible=False, version=1)

    @get(
        "",
        opt=OWNER_ONLY,
        responses=responses(400, 401, 403, 422, 503),
        response_headers=[TOTAL_COUNT_HEADER, NEXT_CURSOR_HEADER],
    )
    async def list(
        self,
        services: Services,
        caller: Caller,
        active: FromQuery[bool | None] = None,
        search: Annotated[str | None, QueryParameter(max_length=200, schema_extra=NO_NUL)] = None,
        first_name: Annotated[
            str | None, QueryParameter(max_length=200, schema_extra=NO_NUL)
        ] = None,
        last_name: Annotated[
            str | None, QueryParameter(max_length=200, schema_extra=NO_NUL)
        ] = None,
        email: Annotated[str | None, QueryParameter(max_length=254, schema_extra=NO_NUL)] = None,
        min_age: Annotated[int | None, QueryParameter(ge=0, schema_extra=FROM_ZERO, le=200)] = None,
        max_age: Annotated[int | None, QueryParameter(ge=0, schema_extra=FROM_ZERO, le=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, schema_extra=FROM_ZERO, le=MAX_OFFSET)] = 0,
        after: Annotated[str | None, AFTER] = None,
    ) -> Response[builtins.list[CustomerResponse]]:  # `list` is this method here
        """Newest first. `search` matches names and email; ages count in the gym's
        time zone. Page with `offset`, or with `after` set to the X-Next-Cursor of the
        page before (exact while customers are added). 400: min_age greater than
        max_age."""
        for name, value in (
            ("search", search),
            ("first_name", first_name),
            ("last_name", last_name),
            ("email", email),
        ):
            if value is not None and "\x00" in value:  # PostgreSQL text cannot hold NUL
                raise query_error(name, "must not contain NUL")
        if min_age is not None and max_age is not None and min_age > max_age:
            raise InvalidQuery("min_age must not be greater than max_age")
        today = caller.today(services.clock.now())
        query = CustomerFilter(
            active=active,
            search=search,
            first_name=first_name,
            last_name=last_name,
            email=email,
            min_age=min_age,
            max_age=max_age,
            limit=limit,
            offset=offset,
            after=None if after is None else cursors.position(after),
        )
        async with services.read_pool.connection() as conn:
            rows = await list_customers(conn, caller.id, query, today)
            total = await _count(services, conn, caller.id, query, today)
            held, visits = await _of_rows(conn, caller.id, rows, services.clock.now())
        headers = {"X-Total-Count": str(total)}
        if len(rows) == limit:  # there may be more: where the next page starts
            headers["X-Next-Cursor"] = cursors.cursor(rows[-1].created_at, rows[-1].id)
        body = [
            CustomerResponse.of(row, today, held.get(row.id, ()), visits.get(row.id, NO_VISITS))
            for row in rows
        ]
        return Response(body, headers=headers)

    @get(
        "/{customer_id:uuid}",
        opt=OWNER_UNLESS_TIME_TRAVEL,
        responses=responses(401, 403, 404, 422, 503),
        response_headers=[ETAG_HEADER],
    )
    async def show(
        self,
        services: Services,
        caller: Caller,
        customer_id: FromPath[UUID],
        as_of: Annotated[str | None, AS_OF] = None,
        version: Annotated[int | None, VERSION] = None,
    ) -> Response[CustomerResponse]:
        """The customer now (owner), or as they were at `as_of` / `version` (owner or
        auditor), rebuilt from the event log rather than the read table."""
        if as_of is not None or version is not None:
            return await _time_travel(services, caller, customer_id, as_of, version)
        async with services.read_pool.connection() as conn:
            row = await get_customer(conn, caller.id, customer_id)
            if row is None:
                raise NotFound("customer")
            now = services.clock.now()
            held, visits = await _of_rows(conn, caller.id, [row], now)
        body = CustomerResponse.of(
            row, caller.today(now), held.get(row.id, ()), visits.get(row.id, NO_VISITS)
        )
        return Response(body, headers=etag(row.version))

    @patch(
        "/{customer_id:uuid}",
        opt=OWNER_ONLY,
        responses=responses(400, 401, 403, 404, 409, 412, 413, 422, 503),
        response_headers=[ETAG_HEADER],
    )
    async def update(
        self,
        services: Services,
        caller: Caller,
        customer_id: FromPath[UUID],
        data: PatchBody,
        if_match: IfMatch = None,
    ) -> Response[CustomerResponse]:
        """412: If-Match names a version that is no longer the customer's."""
        command = ChangeCustomer(
            gym_id=caller.id,
            customer_id=customer_id,
            details=data,
            expected_version=expected_version(if_match),
        )
        result, visible = await services.run(command, actor=str(caller.id))
        body = await _customer_response(services, caller, customer_id, visible)
        return Response(body, headers=etag(result.version))

    @delete(
        "/{customer_id:uuid}",
        status_code=204,
        opt=OWNER_ONLY,
        responses=responses(401, 403, 404, 412, 422, 503),
    )
    async def remove(
        self,
        services: Services,
        caller: Caller,
        customer_id: FromPath[UUID],
        if_match: IfMatch = None,
    ) -> None:
        """The customer's history stays readable (GET .../history). 412: If-Match
        names a version that is no longer the customer's."""
        command = RemoveCustomer(
            gym_id=caller.id, customer_id=customer_id, expected_version=expected_version(if_match)
        )
        await services.run(command, actor=str(caller.id))
