"""Commands on customers and their handlers (one handler per command).

Tenant scoping happens here, once: a customer of another gym is reported as not
found, exactly like one that does not exist.
"""

from collections.abc import Callable
from uuid import UUID, uuid4

import msgspec
from eventsourcing.application import AggregateNotFoundError

from commands import card_codes
from commands.context import CommandContext
from commands.gyms import load_gym, open_gym, open_gym_guarded
from commands.idempotency import earlier_result, key_used
from commands.latest import decide_on_latest
from commands.results import CommandResult
from commands.store import EventStore, StreamConflict
from domain import card_claim, customer, idempotency
from domain.customer import Customer as Customer  # the payloads and state, for callers
from domain.customer import CustomerDetails as CustomerDetails
from domain.customer import NewCustomer as NewCustomer
from domain.errors import NotFound, StreamOfAnotherKind, VersionConflict
from domain.events import DomainEvent, Stamp
from domain.gym import Gym
from domain.validation import local_date

# Decides the events of an update (the customer's, and the card claims that go with
# them) from the current customer, their gym and the stamp of this attempt (taken
# after loading, so a stream's times never go back).
Decision = Callable[[customer.Customer, Gym, Stamp], list[DomainEvent]]


class RegisterCustomer(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    details: customer.NewCustomer
    idempotency_key: str | None = None
    fingerprint: str = ""  # digest of the request, compared on a retried key


class ChangeCustomer(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    customer_id: UUID
    details: customer.CustomerDetails
    expected_version: int | None = None  # None: apply to the latest version


class RemoveCustomer(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    customer_id: UUID
    expected_version: int | None = None


class ExpireMembership(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: UUID


def load_customer(
    app: EventStore, gym_id: UUID | None, customer_id: UUID, version: int | None = None
) -> customer.Customer:
    """The customer as stored (optionally at a past version), scoped to `gym_id`."""
    try:
        if version is None:
            found = app.latest.get(customer_id, customer.project)
        else:
            found = app.repository.get(
                customer_id, version=version, projector_func=customer.project
            )
    except (AggregateNotFoundError, StreamOfAnotherKind):
        found = None
    if found is None or (gym_id is not None and found.gym_id != gym_id):
        raise NotFound("customer")
    return found


def _earlier_result(app: EventStore, cmd: RegisterCustomer) -> CommandResult | None:
    found = earlier_result(app, str(cmd.gym_id), cmd.idempotency_key, cmd.fingerprint)
    return None if found is None else CommandResult(found, 1, 0, replayed=True)


def register_customer(app: EventStore, cmd: RegisterCustomer, ctx: CommandContext) -> CommandResult:
    def attempt() -> CommandResult:
        earlier = _earlier_result(app, cmd)
        if earlier is not None:
            return earlier
        gym, guards = open_gym_guarded(app, cmd.gym_id)
        stamp = ctx.stamp()
        registered = customer.register(
            uuid4(),
            gym.id,
            cmd.details,
            today=local_date(stamp.at, gym.timezone),
            stamp=stamp,
        )
        claimed = card_codes.claim_for_new(app, registered, stamp)
        key = key_used(
            str(gym.id),
            cmd.idempotency_key,
            cmd.fingerprint,
            registered.originator_id,
            gym.id,
            stamp,
        )
        position = app.append(registered, claimed, key, guards=guards)
        created = customer.project(None, [registered])
        return CommandResult(
            id=registered.originator_id, version=1, position=position, state=created
        )

    # Only the key's stream or the card's claim can collide (the customer id is new):
    # decided again, the request answers as the one with the same key did, or finds
    # the card taken (or freed meanwhile). Contended only by requests naming either.
    contended = _key_stream(cmd) or _card_stream(cmd) or uuid4()
    return decide_on_latest(app.stream_locks, contended, ctx, attempt)


def _key_stream(cmd: RegisterCustomer) -> UUID | None:
    if cmd.idempotency_key is None:
        return None
    return idempotency.stream_id(str(cmd.gym_id), idempotency.check_key(cmd.idempotency_key))


def _card_stream(cmd: RegisterCustomer) -> UUID | None:
    code = cmd.details.card_code
    return None if code is None else card_claim.claim_id(cmd.gym_id, code)


def _decide(
    app: EventStore,
    ctx: CommandContext,
    gym_id: UUID,
    customer_id: UUID,
    expected_version: int | None,
    decide: Decision,
) -> CommandResult:
    """Load, check the expected version, decide, append; without an expected version
    "latest wins" is what was asked for, so a lost race is decided again
    (commands/latest.py)."""

    def attempt() -> CommandResult:
        current = load_customer(app, gym_id, customer_id)
        if expected_version is not None and current.version != expected_version:
            raise VersionConflict(expected_version, current.version)
        gym = open_gym(app, gym_id)
        events = decide(current, gym, ctx.stamp())
        if not events:
            return CommandResult(id=current.id, version=current.version, position=0)
        try:
            position = app.append(*events)
        except StreamConflict:
            card_codes.refuse_if_taken(app, events)
            raise
        own = [e.originator_version for e in events if e.originator_id == current.id]
        return CommandResult(id=current.id, version=max(own), position=position)

    return decide_on_latest(
        app.stream_locks, customer_id, ctx, attempt, conditional=expected_version is not None
    )


def change_customer(app: EventStore, cmd: ChangeCustomer, ctx: CommandContext) -> CommandResult:
    if cmd.expected_version is not None:
        # A request that fails on its own says so rather than answer 412 (RFC 9110,
        # 13.2.1): its rules are checked before the precondition.
        gym = open_gym(app, cmd.gym_id)
        customer.check_details(cmd.details, local_date(ctx.clock.now(), gym.timezone))

    def decide(current: customer.Customer, gym: Gym, stamp: Stamp) -> list[DomainEvent]:
        today = local_date(stamp.at, gym.timezone)
        events = customer.change(current, cmd.details, today=today, stamp=stamp)
        return events + card_codes.moves(app, current, events, stamp)

    return _decide(app, ctx, cmd.gym_id, cmd.customer_id, cmd.expected_version, decide)


def remove_customer(app: EventStore, cmd: RemoveCustomer, ctx: CommandContext) -> CommandResult:
    def decide(current: customer.Customer, _: Gym, stamp: Stamp) -> list[DomainEvent]:
        return [customer.remove(current, stamp), *card_codes.released(app, current, stamp)]

    return _decide(app, ctx, cmd.gym_id, cmd.customer_id, cmd.expected_version, decide)


def expire_membership(app: EventStore, cmd: ExpireMembership, ctx: CommandContext) -> CommandResult:
    """Run by the scheduler as "system"; a no-op unless the membership has lapsed."""

    def attempt() -> CommandResult:
        current = load_customer(app, None, cmd.customer_id)
        gym = load_gym(app, current.gym_id)
        stamp = ctx.stamp()
        expired = customer.expire_membership(current, local_date(stamp.at, gym.timezone), stamp)
        if expired is None:
            return CommandResult(id=current.id, version=current.version, position=0)
        position = app.append(expired)
        return CommandResult(id=current.id, version=expired.originator_version, position=position)

    return decide_on_latest(app.stream_locks, cmd.customer_id, ctx, attempt)
