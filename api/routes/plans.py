"""Plans of the caller's gym: what it sells (a price for a term). Owners write;
auditors may read, and read any past version (`as_of`, `version`)."""

import builtins
import hashlib
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.params import Body, FromPath, FromQuery

from api.auth import CALLER, OWNER_ONLY, CallerGym
from api.errors import responses
from api.headers import IdempotencyKey, IfMatch, expected_version
from api.moments import AS_OF, VERSION, as_of_in_utc
from api.openapi import SECURED
from api.routes.customers import ETAG_HEADER, Caller, etag
from api.schemas import PlanResponse
from api.state import AppState, Services
from commands.plans import ChangePlan, CreatePlan, NewPlan, Plan, PlanChanges, RetirePlan, load_plan
from commands.results import CommandResult
from commands.time_travel import plan_as_of
from domain.errors import NotFound
from projections.plans import get_plan, list_plans

CreateBody = Annotated[NewPlan, Body(schema_component_key="PlanCreateRequest")]
PatchBody = Annotated[PlanChanges, Body(schema_component_key="PlanPatchRequest")]


async def _answer(services: AppState, caller: CallerGym, result: CommandResult) -> Plan:
    """The plan as the command left it: at hand, or (a retried key) as that version."""
    if isinstance(result.state, Plan):
        return result.state
    plan_id, version = result.id, result.version
    return await services.on_ledger(lambda ledger: load_plan(ledger, caller.id, plan_id, version))


class PlansController(Controller):
    path = "/plans"
    tags = ["plans"]
    dependencies = {"caller": CALLER}
    security = SECURED

    @post(
        "",
        status_code=201,
        opt=OWNER_ONLY,
        responses=responses(401, 403, 413, 422, 503),
        response_headers=[ETAG_HEADER],
    )
    async def create(
        self,
        services: Services,
        caller: Caller,
        data: CreateBody,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PlanResponse]:
        """`max_freeze_days`: days a membership of it may be frozen per term (default 0)."""
        command = CreatePlan(
            gym_id=caller.id,
            plan=data,
            idempotency_key=idempotency_key,
            fingerprint=hashlib.sha256(b"plan\n" + msgspec.json.encode(data)).hexdigest(),
        )
        result, _ = await services.run(command, actor=str(caller.id))
        plan = await _answer(services, caller, result)
        return Response(PlanResponse.of(plan), status_code=201, headers=etag(plan.version))

    @get("", responses=responses(401, 422, 503))
    async def list(
        self, services: Services, caller: Caller, retired: FromQuery[bool | None] = None
    ) -> builtins.list[PlanResponse]:  # `list` is this method here
        """Newest first; `retired=false` leaves retired plans out (`true`: only them)."""
        async with services.read_pool.connection() as conn:
            plans = await list_plans(conn, caller.id, retired=retired)
        return [PlanResponse.of(plan) for plan in plans]

    @get(
        "/{plan_id:uuid}",
        responses=responses(401, 404, 422, 503),
        response_headers=[ETAG_HEADER],
    )
    async def show(
        self,
        services: Services,
        caller: Caller,
        plan_id: FromPath[UUID],
        as_of: Annotated[str | None, AS_OF] = None,
        version: Annotated[int | None, VERSION] = None,
    ) -> Response[PlanResponse]:
        """The plan now, or as it was at `as_of` / `version` (rebuilt from the log)."""
        if as_of is not None or version is not None:
            moment = None if as_of is None else as_of_in_utc(as_of)
            async with services.read_pool.connection() as conn:
                plan = await plan_as_of(conn, caller.id, plan_id, moment=moment, version=version)
        else:
            async with services.read_pool.connection() as conn:
                plan = await get_plan(conn, caller.id, plan_id)
        if plan is None:
            raise NotFound("plan")
        return Response(PlanResponse.of(plan), headers=etag(plan.version))

    @patch(
        "/{plan_id:uuid}",
        opt=OWNER_ONLY,
        responses=responses(401, 403, 404, 412, 413, 422, 503),
        response_headers=[ETAG_HEADER],
    )
    async def update(
        self,
        services: Services,
        caller: Caller,
        plan_id: FromPath[UUID],
        data: PatchBody,
        if_match: IfMatch = None,
    ) -> Response[PlanResponse]:
        """Applies to memberships sold after it: those sold before keep their terms and
        price. 412: If-Match names a version that is no longer the plan's."""
        command = ChangePlan(
            gym_id=caller.id,
            plan_id=plan_id,
            changes=data,
            expected_version=expected_version(if_match),
        )
        result, _ = await services.run(command, actor=str(caller.id))
        plan = await _answer(services, caller, result)
        return Response(PlanResponse.of(plan), headers=etag(plan.version))

    @delete(
        "/{plan_id:uuid}",
        status_code=204,
        opt=OWNER_ONLY,
        responses=responses(401, 403, 404, 412, 422, 503),
    )
    async def retire(
        self,
        services: Services,
        caller: Caller,
        plan_id: FromPath[UUID],
        if_match: IfMatch = None,
    ) -> None:
        """Retires the plan: it is no longer sold (409 on a sale), its memberships go on,
        and it stays readable. Retiring it again changes nothing."""
        command = RetirePlan(
            gym_id=caller.id, plan_id=plan_id, expected_version=expected_version(if_match)
        )
        await services.run(command, actor=str(caller.id))
