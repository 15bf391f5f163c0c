"""Commands on memberships and their handlers (one handler per command).

Tenant scoping happens here, once: another gym's membership, customer or plan is
reported as not found, exactly like one that does not exist; so is a membership of a
removed customer (it left the read side with them).

Every command takes an `Idempotency-Key` and every command on an existing membership
an expected version (`If-Match`). A key is scoped to the gym, like POST /customers'
(the route's fingerprint names the operation, the path and the body), and answers a
retry with the membership as the first request left it (the key records that version).
"""

from collections.abc import Callable
from uuid import UUID, uuid4

import msgspec
from eventsourcing.application import AggregateNotFoundError

from commands.context import CommandContext
from commands.customers import load_customer
from commands.gyms import open_gym
from commands.idempotency import earlier_version, key_used
from commands.latest import decide_on_latest
from commands.plans import load_plan
from commands.results import CommandResult
from commands.store import EventStore, StreamConflict
from domain import membership
from domain.errors import NotFound, StreamOfAnotherKind, VersionConflict
from domain.events import DomainEvent, Stamp
from domain.membership import CancelRequest as CancelRequest  # the payloads, for callers
from domain.membership import FreezeRequest as FreezeRequest
from domain.membership import Membership as Membership
from domain.membership import NewMembership as NewMembership
from domain.membership import UnfreezeRequest as UnfreezeRequest
from domain.validation import calendar_day


class SellMembership(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    customer_id: UUID
    sale: membership.NewMembership
    idempotency_key: str | None = None
    fingerprint: str = ""  # digest of the request, compared on a retried key


class FreezeMembership(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    membership_id: UUID
    request: membership.FreezeRequest
    expected_version: int | None = None  # None: apply to the latest version
    idempotency_key: str | None = None
    fingerprint: str = ""


class UnfreezeMembership(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    membership_id: UUID
    request: membership.UnfreezeRequest
    expected_version: int | None = None
    idempotency_key: str | None = None
    fingerprint: str = ""


class RenewMembership(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    membership_id: UUID
    expected_version: int | None = None
    idempotency_key: str | None = None
    fingerprint: str = ""


class CancelMembership(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    membership_id: UUID
    request: membership.CancelRequest
    expected_version: int | None = None
    idempotency_key: str | None = None
    fingerprint: str = ""


MembershipCommand = FreezeMembership | UnfreezeMembership | RenewMembership | CancelMembership
Decision = Callable[[membership.Membership, Stamp], DomainEvent]


def load_membership(
    app: EventStore, gym_id: UUID | None, membership_id: UUID, version: int | None = None
) -> membership.Membership:
    """The membership as stored (optionally at a past version), scoped to `gym_id`;
    with a gym, also NotFound when its customer was removed. `gym_id` None: the
    system's own jobs, which see every gym."""
    try:
        if version is None:
            found = app.latest.get(membership_id, membership.project)
        else:
            found = app.repository.get(
                membership_id, version=version, projector_func=membership.project
            )
    except (AggregateNotFoundError, StreamOfAnotherKind):
        found = None
    held = membership.require_present(found, gym_id)
    if gym_id is not None:
        try:
            holder = load_customer(app, gym_id, held.customer_id)
        except NotFound:
            holder = None
        if holder is None or holder.removed:
            raise NotFound("membership")
    return held


def _replayed(
    app: EventStore, gym_id: UUID, key: str | None, fingerprint: str
) -> CommandResult | None:
    """The result of an earlier request with this key and body (None: a new key)."""
    found = earlier_version(app, str(gym_id), key, fingerprint)
    return None if found is None else CommandResult(found[0], found[1], 0, replayed=True)


def sell_membership(app: EventStore, cmd: SellMembership, ctx: CommandContext) -> CommandResult:
    """The customer must be the gym's and present, the plan the gym's and on sale."""
    earlier = _replayed(app, cmd.gym_id, cmd.idempotency_key, cmd.fingerprint)
    if earlier is not None:
        return earlier
    calendar_day("starts_on", cmd.sale.starts_on)  # a bad day is 422 whatever else holds
    gym = open_gym(app, cmd.gym_id)
    buyer = load_customer(app, gym.id, cmd.customer_id)
    if buyer.removed:
        raise NotFound("customer")
    sold_plan = load_plan(app, gym.id, cmd.sale.plan_id)
    stamp = ctx.stamp()
    sold = membership.sell(uuid4(), buyer.id, sold_plan, cmd.sale.starts_on, stamp)
    key = key_used(
        str(gym.id), cmd.idempotency_key, cmd.fingerprint, sold.originator_id, gym.id, stamp
    )
    try:
        position = app.append(sold, key)
    except StreamConflict:
        # Only the key stream can collide (the membership id is new): a concurrent
        # request with the same key won, so answer as it did.
        earlier = _replayed(app, cmd.gym_id, cmd.idempotency_key, cmd.fingerprint)
        if earlier is None:
            raise
        return earlier
    state = membership.project(None, [sold])
    return CommandResult(id=sold.originator_id, version=1, position=position, state=state)


def _decide(
    app: EventStore, ctx: CommandContext, cmd: MembershipCommand, decide: Decision
) -> CommandResult:
    """An earlier result for the key, else load, check the expected version, decide and
    append the event with the key; without an expected version a lost race is decided
    again on the latest version (commands/latest.py)."""

    def attempt() -> CommandResult:
        earlier = _replayed(app, cmd.gym_id, cmd.idempotency_key, cmd.fingerprint)
        if earlier is not None:
            return earlier
        current = load_membership(app, cmd.gym_id, cmd.membership_id)
        if cmd.expected_version is not None and current.version != cmd.expected_version:
            raise VersionConflict(cmd.expected_version, current.version)
        open_gym(app, cmd.gym_id)
        stamp = ctx.stamp()
        event = decide(current, stamp)
        key = key_used(
            str(cmd.gym_id),
            cmd.idempotency_key,
            cmd.fingerprint,
            current.id,
            cmd.gym_id,
            stamp,
            event.originator_version,
        )
        position = app.append(event, key)
        state = membership.evolve(current, event)
        return CommandResult(id=current.id, version=state.version, position=position, state=state)

    conditional = cmd.expected_version is not None
    try:
        return decide_on_latest(
            app.stream_locks, cmd.membership_id, ctx, attempt, conditional=conditional
        )
    except StreamConflict:
        # With If-Match a lost race is the answer, unless the winner was this very
        # request retried with its key: then the answer is the winner's.
        earlier = _replayed(app, cmd.gym_id, cmd.idempotency_key, cmd.fingerprint)
        if earlier is None:
            raise
        return earlier


def freeze_membership(app: EventStore, cmd: FreezeMembership, ctx: CommandContext) -> CommandResult:
    # A request that fails on its own says so rather than answer 412 (RFC 9110, 13.2.1).
    membership.check_freeze(cmd.request)
    return _decide(app, ctx, cmd, lambda m, stamp: membership.freeze(m, cmd.request, stamp))


def unfreeze_membership(
    app: EventStore, cmd: UnfreezeMembership, ctx: CommandContext
) -> CommandResult:
    membership.check_unfreeze(cmd.request)
    return _decide(app, ctx, cmd, lambda m, stamp: membership.unfreeze(m, cmd.request, stamp))


def renew_membership(app: EventStore, cmd: RenewMembership, ctx: CommandContext) -> CommandResult:
    """At the plan's current price: the plan is loaded, retired or not (its memberships
    go on)."""

    def renew(m: membership.Membership, stamp: Stamp) -> DomainEvent:
        return membership.renew(m, load_plan(app, m.gym_id, m.plan_id), stamp)

    return _decide(app, ctx, cmd, renew)


def cancel_membership(app: EventStore, cmd: CancelMembership, ctx: CommandContext) -> CommandResult:
    membership.check_cancel(cmd.request)
    return _decide(app, ctx, cmd, lambda m, stamp: membership.cancel(m, cmd.request, stamp))
