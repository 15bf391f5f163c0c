"""Commands on plans and their handlers (one handler per command).

Tenant scoping happens here, once: another gym's plan is reported as not found,
exactly like one that does not exist.
"""

from collections.abc import Callable
from uuid import UUID, uuid4

import msgspec
from eventsourcing.application import AggregateNotFoundError

from commands.context import CommandContext
from commands.gyms import open_gym
from commands.idempotency import earlier_result, key_used
from commands.latest import decide_on_latest
from commands.results import CommandResult
from commands.store import EventStore, StreamConflict
from domain import plan
from domain.errors import StreamOfAnotherKind, VersionConflict
from domain.events import DomainEvent, Stamp
from domain.plan import NewPlan as NewPlan  # the payloads and state, for callers
from domain.plan import Plan as Plan
from domain.plan import PlanChanges as PlanChanges


class CreatePlan(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    plan: plan.NewPlan
    idempotency_key: str | None = None
    fingerprint: str = ""  # digest of the request, compared on a retried key


class ChangePlan(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    plan_id: UUID
    changes: plan.PlanChanges
    expected_version: int | None = None  # None: apply to the latest version


class RetirePlan(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    plan_id: UUID
    expected_version: int | None = None


def load_plan(
    app: EventStore, gym_id: UUID, plan_id: UUID, version: int | None = None
) -> plan.Plan:
    """The plan's latest state (or as it was at `version`), scoped to `gym_id`
    (another gym's: NotFound)."""
    try:
        if version is None:
            found = app.latest.get(plan_id, plan.project)
        else:
            found = app.repository.get(plan_id, version=version, projector_func=plan.project)
    except (AggregateNotFoundError, StreamOfAnotherKind):
        found = None
    return plan.require_present(found, gym_id)


def _earlier_result(app: EventStore, cmd: CreatePlan) -> CommandResult | None:
    found = earlier_result(app, str(cmd.gym_id), cmd.idempotency_key, cmd.fingerprint)
    return None if found is None else CommandResult(found, 1, 0, replayed=True)


def create_plan(app: EventStore, cmd: CreatePlan, ctx: CommandContext) -> CommandResult:
    earlier = _earlier_result(app, cmd)
    if earlier is not None:
        return earlier
    gym = open_gym(app, cmd.gym_id)
    stamp = ctx.stamp()
    created = plan.create(uuid4(), gym.id, cmd.plan, stamp)
    key = key_used(
        str(gym.id), cmd.idempotency_key, cmd.fingerprint, created.originator_id, gym.id, stamp
    )
    try:
        position = app.append(created, key)
    except StreamConflict:
        # Only the key stream can collide (the plan id is new): a concurrent request
        # with the same key won, so answer as it did.
        earlier = _earlier_result(app, cmd)
        if earlier is None:
            raise
        return earlier
    state = plan.project(None, [created])
    return CommandResult(id=created.originator_id, version=1, position=position, state=state)


def _decide(
    app: EventStore,
    ctx: CommandContext,
    cmd: ChangePlan | RetirePlan,
    decide: Callable[[plan.Plan, Stamp], DomainEvent | None],
) -> CommandResult:
    """Load, check the expected version, decide, append (decided again on the latest
    version after a lost race when no version was named: commands/latest.py)."""

    def attempt() -> CommandResult:
        current = load_plan(app, cmd.gym_id, cmd.plan_id)
        if cmd.expected_version is not None and current.version != cmd.expected_version:
            raise VersionConflict(cmd.expected_version, current.version)
        open_gym(app, cmd.gym_id)
        event = decide(current, ctx.stamp())
        if event is None:
            return CommandResult(id=current.id, version=current.version, position=0, state=current)
        position = app.append(event)
        state = plan.evolve(current, event)
        return CommandResult(id=current.id, version=state.version, position=position, state=state)

    return decide_on_latest(
        app.stream_locks, cmd.plan_id, ctx, attempt, conditional=cmd.expected_version is not None
    )


def change_plan(app: EventStore, cmd: ChangePlan, ctx: CommandContext) -> CommandResult:
    # A request that fails on its own says so rather than answer 412 (RFC 9110, 13.2.1).
    plan.check_changes(cmd.changes)
    return _decide(app, ctx, cmd, lambda current, stamp: plan.change(current, cmd.changes, stamp))


def retire_plan(app: EventStore, cmd: RetirePlan, ctx: CommandContext) -> CommandResult:
    return _decide(app, ctx, cmd, plan.retire)
