"""Check-ins at the front desk: the command and its handler.

The decision is taken here, on the state the log holds at this moment (the customer,
the owner's switch, the earlier contract's membership dates and every membership's
own stream), never on the read model, which may be a few milliseconds behind: the
desk is told what the log says. Only *which* memberships the customer holds comes
from the read model (the route looks their ids up, as nothing in the log indexes
streams by customer); each is then loaded from the log and used only if it is this
customer's, so a lagging index can never let someone in on another's membership.
"""

from collections.abc import Iterator
from uuid import UUID, uuid4

import msgspec
from eventsourcing.application import AggregateNotFoundError

from commands import card_codes
from commands.context import CommandContext
from commands.customers import load_customer
from commands.gyms import open_gym_guarded
from commands.idempotency import earlier_result, key_used
from commands.latest import decide_on_latest
from commands.results import CommandResult
from commands.store import EventStore
from domain import check_in, customer, idempotency, membership
from domain.check_in import CheckInRecorded as CheckInRecorded  # for callers
from domain.check_in import NewCheckIn as NewCheckIn
from domain.check_in import identified_by as identified_by
from domain.errors import NotFound, StreamOfAnotherKind
from domain.membership import Status
from domain.validation import local_date


class RecordCheckIn(msgspec.Struct, frozen=True, kw_only=True):
    gym_id: UUID
    request: check_in.NewCheckIn
    # The memberships the read model lists for the customer the request names.
    membership_ids: tuple[UUID, ...] = ()
    idempotency_key: str | None = None
    fingerprint: str = ""  # digest of the request, compared on a retried key


def idempotency_scope(gym_id: UUID) -> str:
    """Scans' keys are their own: a key a client also used to create a customer is
    not this desk's scan (nor refused as a reused key)."""
    return f"check-ins:{gym_id}"


def load_check_in(app: EventStore, gym_id: UUID, check_in_id: UUID) -> CheckInRecorded:
    try:
        found = app.latest.get(check_in_id, check_in.project)
    except (AggregateNotFoundError, StreamOfAnotherKind):
        found = None
    if found is None or found.gym_id != gym_id:
        raise NotFound("check-in")
    return found


def _customer_at_desk(app: EventStore, gym_id: UUID, named: UUID | str) -> customer.Customer:
    """The customer by id, or the one who carries the card; 404 for another gym's,
    a removed one or an unknown card."""
    if isinstance(named, str):
        holder = card_codes.holder(app, gym_id, named)
        if holder is None:
            raise NotFound("card")
        named = holder
    found = load_customer(app, gym_id, named)
    customer.require_present(found)
    return found


def _memberships(
    app: EventStore, held_by: customer.Customer, ids: tuple[UUID, ...]
) -> Iterator[membership.Membership]:
    for membership_id in dict.fromkeys(ids):
        try:
            found = app.latest.get(membership_id, membership.project)
        except (AggregateNotFoundError, StreamOfAnotherKind):
            continue
        if found is not None and (found.gym_id, found.customer_id) == (
            held_by.gym_id,
            held_by.id,
        ):
            yield found


def record_check_in(app: EventStore, cmd: RecordCheckIn, ctx: CommandContext) -> CommandResult:
    scope = idempotency_scope(cmd.gym_id)

    def attempt() -> CommandResult:
        earlier = earlier_result(app, scope, cmd.idempotency_key, cmd.fingerprint)
        if earlier is not None:  # the same scan again: the same check-in
            first = load_check_in(app, cmd.gym_id, earlier)
            return CommandResult(earlier, 1, 0, replayed=True, state=first)
        named = check_in.identified_by(cmd.request)
        gym, guards = open_gym_guarded(app, cmd.gym_id)
        at_desk = _customer_at_desk(app, gym.id, named)
        stamp = ctx.stamp()
        today = local_date(stamp.at, gym.timezone)
        statuses: list[Status] = [
            membership.status_on(m, today) for m in _memberships(app, at_desk, cmd.membership_ids)
        ]
        # As on the customer response: the dates stored on the customer (the earlier
        # contract) count only for a customer who holds no membership.
        dated = check_in.dated_status(at_desk.membership_start, at_desk.membership_end, today)
        if dated is not None and not statuses:
            statuses.append(dated)
        recorded = check_in.record(
            uuid4(),
            gym.id,
            at_desk.id,
            check_in.decide(at_desk.owner_active, statuses),
            named if isinstance(named, str) else None,
            stamp,
        )
        key = key_used(
            scope, cmd.idempotency_key, cmd.fingerprint, recorded.originator_id, gym.id, stamp
        )
        position = app.append(recorded, key, guards=guards)
        return CommandResult(recorded.originator_id, 1, position, state=recorded)

    # Only the key's stream can collide, or the gym's guard (changed meanwhile): decided
    # again, a scan repeated at the same moment answers with the check-in the first
    # one recorded. Without a key, the check-in is a new stream of its own.
    contended = uuid4()
    if cmd.idempotency_key is not None:
        contended = idempotency.stream_id(scope, idempotency.check_key(cmd.idempotency_key))
    return decide_on_latest(app.stream_locks, contended, ctx, attempt)
