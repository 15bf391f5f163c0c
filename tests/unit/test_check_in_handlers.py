"""Card codes and check-ins through `ledger.handle`, on eventsourcing's in-memory store.

The desk's decision is taken on the log's state: every reason a check-in can be
denied, the owner's switch first, the earlier contract's dates beside memberships,
an idempotent scan, card codes unique per gym and moved, freed and taken atomically.
"""

from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import msgspec
import pytest

from commands.application import GymLedger
from commands.card_codes import holder
from commands.check_ins import NewCheckIn, RecordCheckIn
from commands.context import CommandContext
from commands.customers import (
    ChangeCustomer,
    CustomerDetails,
    NewCustomer,
    RegisterCustomer,
    RemoveCustomer,
    load_customer,
)
from commands.gyms import NewGym, ProfileChanges, RegisterGym, UpdateGymProfile
from domain import membership, plan
from domain.check_in import CheckInRecorded
from domain.errors import CardCodeTaken, IdempotencyKeyReused, InvalidValue, NotFound
from domain.events import EventMetadata, Stamp
from domain.membership import CancelRequest, FreezeRequest
from domain.terms import Term
from infra.clock import ManualClock
from infra.passwords import Argon2Passwords

CHEAP = Argon2Passwords(time_cost=1, memory_kib=8)
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)  # 2026-06-15 in UTC
TODAY = date(2026, 6, 15)
STAMP = Stamp(at=NOW, metadata=EventMetadata(actor="test", correlation_id="req"))


@pytest.fixture
def ledger() -> GymLedger:
    return GymLedger(None, passwords=CHEAP)


@pytest.fixture
def ctx() -> CommandContext:
    return CommandContext(actor="test", correlation_id="req", clock=ManualClock(NOW))


def open_gym(ledger: GymLedger, ctx: CommandContext) -> UUID:
    new = NewGym(
        name="Iron Temple",
        email=f"{uuid4().hex}@example.com",
        password="violet kettle harbour",
        monthly_fee_cents=4900,
        currency="EUR",
    )
    return ledger.handle(RegisterGym(signup=new), ctx).id


def register(ledger: GymLedger, ctx: CommandContext, gym_id: UUID, **details: object) -> UUID:
    new = NewCustomer(first_name="Ann", last_name="Lee", email="ann@example.com")
    command = RegisterCustomer(gym_id=gym_id, details=msgspec.structs.replace(new, **details))
    return ledger.handle(command, ctx).id


def sell(
    ledger: GymLedger, gym_id: UUID, customer_id: UUID, starts_on: date, months: int = 1
) -> membership.Membership:
    """A membership sold through the domain and stored, as the plans' commands do."""
    created = plan.create(
        uuid4(),
        gym_id,
        plan.NewPlan(
            name="Monthly",
            price_cents=4900,
            currency="EUR",
            term=Term(months=months),
            max_freeze_days=30,
        ),
        STAMP,
    )
    on_sale = plan.project(None, [created])
    assert on_sale is not None
    sold = membership.sell(uuid4(), customer_id, on_sale, starts_on, STAMP)
    ledger.append(created, sold)
    found = membership.project(None, [sold])
    assert found is not None
    return found


def check_in(
    ledger: GymLedger,
    ctx: CommandContext,
    gym_id: UUID,
    memberships: tuple[membership.Membership, ...] = (),
    key: str | None = None,
    fingerprint: str = "",
    *,
    customer_id: UUID | msgspec.UnsetType = msgspec.UNSET,
    card_code: str | msgspec.UnsetType = msgspec.UNSET,
) -> CheckInRecorded:
    request = NewCheckIn(customer_id=customer_id, card_code=card_code)
    return scan(ledger, ctx, gym_id, request, memberships, key, fingerprint)


def scan(
    ledger: GymLedger,
    ctx: CommandContext,
    gym_id: UUID,
    request: NewCheckIn,
    memberships: tuple[membership.Membership, ...] = (),
    key: str | None = None,
    fingerprint: str = "",
) -> CheckInRecorded:
    command = RecordCheckIn(
        gym_id=gym_id,
        request=request,
        membership_ids=tuple(m.id for m in memberships),
        idempotency_key=key,
        fingerprint=fingerprint,
    )
    result = ledger.handle(command, ctx)
    assert isinstance(result.state, CheckInRecorded)
    return result.state


def decision(recorded: CheckInRecorded) -> tuple[bool, str | None]:
    return recorded.allowed, recorded.reason


def test_an_active_membership_lets_the_customer_in(ledger: GymLedger, ctx: CommandContext) -> None:
    gym_id = open_gym(ledger, ctx)
    ann = register(ledger, ctx, gym_id)
    held = sell(ledger, gym_id, ann, date(2026, 6, 1))
    recorded = check_in(ledger, ctx, gym_id, (held,), customer_id=ann)
    assert decision(recorded) == (True, None)
    assert (recorded.customer_id, recorded.gym_id, recorded.card_code) == (ann, gym_id, None)
    assert recorded.timestamp == NOW
    # Recorded in the log, with the actor and request of the command.
    stored = list(ledger.events.get(recorded.originator_id))
    assert stored == [recorded]
    assert recorded.metadata == EventMetadata(actor="test", correlation_id="req")


def test_each_reason_a_check_in_is_denied(ledger: GymLedger, ctx: CommandContext) -> None:
    gym_id = open_gym(ledger, ctx)

    def denied_for(*held: membership.Membership, customer_id: UUID) -> tuple[bool, str | None]:
        return decision(check_in(ledger, ctx, gym_id, held, customer_id=customer_id))

    nobody = register(ledger, ctx, gym_id)
    assert denied_for(customer_id=nobody) == (False, "no_membership")

    later = register(ledger, ctx, gym_id)
    assert denied_for(sell(ledger, gym_id, later, date(2026, 7, 1)), customer_id=later) == (
        False,
        "upcoming",
    )

    lapsed = register(ledger, ctx, gym_id)
    assert denied_for(sell(ledger, gym_id, lapsed, date(2026, 4, 1)), customer_id=lapsed) == (
        False,
        "expired",
    )

    resting = register(ledger, ctx, gym_id)
    held = sell(ledger, gym_id, resting, date(2026, 6, 1))
    frozen = membership.freeze(
        held, FreezeRequest(starts_on=date(2026, 6, 10), ends_on=date(2026, 6, 20)), STAMP
    )
    ledger.append(frozen)
    assert denied_for(held, customer_id=resting) == (False, "frozen")

    gone = register(ledger, ctx, gym_id)
    held = sell(ledger, gym_id, gone, date(2026, 6, 1))
    ledger.append(membership.cancel(held, CancelRequest(effective_on=date(2026, 6, 14)), STAMP))
    assert denied_for(held, customer_id=gone) == (False, "cancelled")

    # The owner's switch comes first, whatever the memberships say.
    off = register(ledger, ctx, gym_id, active=False)
    assert denied_for(sell(ledger, gym_id, off, date(2026, 6, 1)), customer_id=off) == (
        False,
        "inactive",
    )


def test_the_closest_membership_to_access_names_the_reason_and_any_active_one_admits(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym_id = open_gym(ledger, ctx)
    ann = register(ledger, ctx, gym_id)
    old = sell(ledger, gym_id, ann, date(2026, 1, 1))
    upcoming = sell(ledger, gym_id, ann, date(2026, 8, 1))
    assert decision(check_in(ledger, ctx, gym_id, (old, upcoming), customer_id=ann)) == (
        False,
        "upcoming",
    )
    running = sell(ledger, gym_id, ann, date(2026, 6, 15))
    assert decision(check_in(ledger, ctx, gym_id, (old, upcoming, running), customer_id=ann)) == (
        True,
        None,
    )


def test_the_decision_is_taken_on_the_log_not_on_what_the_request_was_given(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    """A membership id of another customer (a stale or wrong index) never admits."""
    gym_id = open_gym(ledger, ctx)
    ann, bob = register(ledger, ctx, gym_id), register(ledger, ctx, gym_id)
    bobs = sell(ledger, gym_id, bob, date(2026, 6, 1))
    assert decision(check_in(ledger, ctx, gym_id, (bobs,), customer_id=ann)) == (
        False,
        "no_membership",
    )
    # A freeze recorded after the id was listed is what the desk is told.
    held = sell(ledger, gym_id, ann, date(2026, 6, 1))
    ledger.append(
        membership.freeze(
            held, FreezeRequest(starts_on=date(2026, 6, 15), ends_on=date(2026, 6, 16)), STAMP
        )
    )
    assert decision(check_in(ledger, ctx, gym_id, (held,), customer_id=ann)) == (False, "frozen")


def test_the_earlier_contracts_dates_count_as_a_membership(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym_id = open_gym(ledger, ctx)
    current = register(ledger, ctx, gym_id, membership_end=date(2026, 6, 15))
    assert decision(check_in(ledger, ctx, gym_id, customer_id=current)) == (True, None)
    lapsed = register(ledger, ctx, gym_id, membership_end=date(2026, 6, 14))
    assert decision(check_in(ledger, ctx, gym_id, customer_id=lapsed)) == (False, "expired")
    later = register(ledger, ctx, gym_id, membership_start=date(2026, 6, 16))
    assert decision(check_in(ledger, ctx, gym_id, customer_id=later)) == (False, "upcoming")
    # An active membership admits a customer whose earlier dates have lapsed.
    held = sell(ledger, gym_id, lapsed, date(2026, 6, 1))
    assert decision(check_in(ledger, ctx, gym_id, (held,), customer_id=lapsed)) == (True, None)


def test_today_is_the_gyms_local_day(ledger: GymLedger, ctx: CommandContext) -> None:
    """12:00 UTC on June 15 is already June 16 in Kiritimati (UTC+14)."""
    gym_id = open_gym(ledger, ctx)
    ledger.handle(
        UpdateGymProfile(gym_id=gym_id, changes=ProfileChanges(timezone="Pacific/Kiritimati")), ctx
    )
    ann = register(ledger, ctx, gym_id)
    starts_tomorrow_in_utc = sell(ledger, gym_id, ann, date(2026, 6, 16))
    assert decision(check_in(ledger, ctx, gym_id, (starts_tomorrow_in_utc,), customer_id=ann)) == (
        True,
        None,
    )


def test_a_card_names_its_customer_and_is_recorded(ledger: GymLedger, ctx: CommandContext) -> None:
    gym_id = open_gym(ledger, ctx)
    ann = register(ledger, ctx, gym_id, card_code="0004211733", membership_end=date(2026, 12, 31))
    recorded = check_in(ledger, ctx, gym_id, card_code="0004211733")
    assert (recorded.customer_id, recorded.card_code, recorded.allowed) == (ann, "0004211733", True)
    with pytest.raises(NotFound, match="Card not found"):
        check_in(ledger, ctx, gym_id, card_code="0004211734")
    with pytest.raises(NotFound):  # another gym's card is no card here
        check_in(ledger, ctx, open_gym(ledger, ctx), card_code="0004211733")


def test_unknown_removed_and_other_gyms_customers_are_not_found(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym_id, other_gym = open_gym(ledger, ctx), open_gym(ledger, ctx)
    theirs = register(ledger, ctx, other_gym)
    removed = register(ledger, ctx, gym_id, card_code="C-1")
    ledger.handle(RemoveCustomer(gym_id=gym_id, customer_id=removed), ctx)
    for named in (
        NewCheckIn(customer_id=theirs),
        NewCheckIn(customer_id=removed),
        NewCheckIn(customer_id=uuid4()),
        NewCheckIn(customer_id=gym_id),  # a stream of another kind
        NewCheckIn(card_code="C-1"),  # freed by the removal
    ):
        with pytest.raises(NotFound):
            scan(ledger, ctx, gym_id, named)


@pytest.mark.parametrize(
    "named",
    [
        NewCheckIn(),
        NewCheckIn(customer_id=uuid4(), card_code="C-1"),
        NewCheckIn(card_code="has space"),
        NewCheckIn(card_code=""),
    ],
)
def test_a_check_in_names_exactly_one_customer_by_id_or_valid_card(
    ledger: GymLedger, ctx: CommandContext, named: NewCheckIn
) -> None:
    gym_id = open_gym(ledger, ctx)
    before = ledger.recorder.max_notification_id()
    with pytest.raises(InvalidValue):
        scan(ledger, ctx, gym_id, named)
    assert ledger.recorder.max_notification_id() == before


def test_a_repeated_scan_with_its_key_is_one_check_in(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym_id = open_gym(ledger, ctx)
    register(ledger, ctx, gym_id, card_code="C-7")
    first = check_in(ledger, ctx, gym_id, key="scan-1", fingerprint="a", card_code="C-7")
    written = ledger.recorder.max_notification_id()
    again = check_in(ledger, ctx, gym_id, key="scan-1", fingerprint="a", card_code="C-7")
    assert again == first
    assert ledger.recorder.max_notification_id() == written
    with pytest.raises(IdempotencyKeyReused):
        check_in(ledger, ctx, gym_id, key="scan-1", fingerprint="b", card_code="C-8")
    # The key of a customer's creation is another scope's: not this scan's.
    ledger.handle(
        RegisterCustomer(
            gym_id=gym_id,
            details=NewCustomer(first_name="B", last_name="C", email="b@example.com"),
            idempotency_key="scan-2",
            fingerprint="x",
        ),
        ctx,
    )
    check_in(ledger, ctx, gym_id, key="scan-2", fingerprint="a", card_code="C-7")


def test_a_card_code_is_one_customers_within_a_gym(ledger: GymLedger, ctx: CommandContext) -> None:
    gym_id = open_gym(ledger, ctx)
    ann = register(ledger, ctx, gym_id, card_code="A-1")
    with pytest.raises(CardCodeTaken):
        register(ledger, ctx, gym_id, card_code="A-1")
    bob = register(ledger, ctx, gym_id)
    with pytest.raises(CardCodeTaken):
        ledger.handle(
            ChangeCustomer(
                gym_id=gym_id, customer_id=bob, details=CustomerDetails(card_code="A-1")
            ),
            ctx,
        )
    assert load_customer(ledger, gym_id, bob).card_code is None
    # The same code in another gym is another card.
    elsewhere = open_gym(ledger, ctx)
    register(ledger, ctx, elsewhere, card_code="A-1")
    assert holder(ledger, gym_id, "A-1") == ann
    # Codes compare exactly.
    register(ledger, ctx, gym_id, card_code="a-1")


def test_a_card_moves_is_cleared_and_freed_on_removal(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym_id = open_gym(ledger, ctx)
    ann = register(ledger, ctx, gym_id, card_code="A-1")

    def change(customer_id: UUID, **details: object) -> int:
        command = ChangeCustomer(
            gym_id=gym_id,
            customer_id=customer_id,
            details=CustomerDetails(**details),  # type: ignore[arg-type]
        )
        return ledger.handle(command, ctx).version

    assert change(ann, card_code="A-2") == 2  # the customer's version, not the claim's
    assert (holder(ledger, gym_id, "A-1"), holder(ledger, gym_id, "A-2")) == (None, ann)
    bob = register(ledger, ctx, gym_id, card_code="A-1")  # freed by the move
    assert change(ann, card_code="A-2") == 2  # unchanged: nothing recorded
    assert change(ann, card_code=None) == 3
    assert holder(ledger, gym_id, "A-2") is None
    assert load_customer(ledger, gym_id, ann).card_code is None
    ledger.handle(RemoveCustomer(gym_id=gym_id, customer_id=bob), ctx)
    assert holder(ledger, gym_id, "A-1") is None
    carol = register(ledger, ctx, gym_id, card_code="A-1")
    assert holder(ledger, gym_id, "A-1") == carol


def test_a_customers_own_dates_do_not_admit_them_past_a_membership_they_hold(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    """Found in review: the earlier contract's dates were counted beside memberships,
    so a frozen member with current dates was let in while the customer read inactive."""
    gym_id = open_gym(ledger, ctx)
    member = register(ledger, ctx, gym_id, membership_end=date(2026, 12, 31))
    held = sell(ledger, gym_id, member, date(2026, 6, 1))
    pause = membership.FreezeRequest(starts_on=date(2026, 6, 10), ends_on=date(2026, 6, 20))
    frozen = membership.freeze(held, pause, STAMP)
    ledger.append(frozen)
    assert decision(check_in(ledger, ctx, gym_id, (held,), customer_id=member)) == (
        False,
        "frozen",
    )
