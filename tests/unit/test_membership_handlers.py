"""The plan and membership handlers through `ledger.handle`, on the in-memory store:
tenant scoping, what a sale requires, If-Match, Idempotency-Key, rules before the
precondition, renewal at the plan's current price."""

from datetime import date
from uuid import UUID, uuid4

import msgspec
import pytest

from commands.application import GymLedger
from commands.context import CommandContext
from commands.customers import RemoveCustomer
from commands.memberships import (
    CancelMembership,
    CancelRequest,
    FreezeMembership,
    FreezeRequest,
    NewMembership,
    RenewMembership,
    SellMembership,
    UnfreezeMembership,
    UnfreezeRequest,
    load_membership,
)
from commands.plans import ChangePlan, CreatePlan, NewPlan, PlanChanges, RetirePlan, load_plan
from domain.errors import (
    IdempotencyKeyReused,
    InvalidValue,
    MembershipRuleBroken,
    NotFound,
    PlanNotOnSale,
    VersionConflict,
)
from domain.terms import Term
from infra.clock import ManualClock
from tests.unit.test_handlers import CHEAP, NOW, handle, new_customer, signup


@pytest.fixture
def ledger() -> GymLedger:
    return GymLedger(None, passwords=CHEAP)


@pytest.fixture
def ctx() -> CommandContext:
    return CommandContext(actor="test", correlation_id="req", clock=ManualClock(NOW))


MONTHLY = NewPlan(name="Monthly", price_cents=3900, currency="eur", term=Term(months=1))


def plan_for(ledger: GymLedger, ctx: CommandContext, gym: UUID, **changes: object) -> UUID:
    new = msgspec.structs.replace(MONTHLY, **changes)
    return handle(ledger, ctx, CreatePlan(gym_id=gym, plan=new)).id


def sale(gym: UUID, customer: UUID, plan: UUID, **fields: object) -> SellMembership:
    new = NewMembership(plan_id=plan, starts_on=date(2026, 3, 1))
    return SellMembership(gym_id=gym, customer_id=customer, sale=new, **fields)  # type: ignore[arg-type]


def setup_sale(
    ledger: GymLedger, ctx: CommandContext, **plan_changes: object
) -> tuple[UUID, UUID, UUID, UUID]:
    """A gym, its customer and plan, and a membership sold from 2026-03-01."""
    gym = handle(ledger, ctx, signup()).id
    customer = handle(ledger, ctx, new_customer(gym)).id
    plan = plan_for(ledger, ctx, gym, **plan_changes)
    sold = handle(ledger, ctx, sale(gym, customer, plan)).id
    return gym, customer, plan, sold


def test_a_plan_is_created_changed_and_retired(ledger: GymLedger, ctx: CommandContext) -> None:
    gym = handle(ledger, ctx, signup()).id
    plan = plan_for(ledger, ctx, gym)
    assert load_plan(ledger, gym, plan).currency == "EUR"
    dearer = ChangePlan(gym_id=gym, plan_id=plan, changes=PlanChanges(price_cents=4500))
    changed = handle(ledger, ctx, dearer)
    assert changed.version == 2
    same = handle(ledger, ctx, dearer)
    assert same.position == 0  # nothing changed: nothing recorded
    with pytest.raises(VersionConflict):
        handle(ledger, ctx, RetirePlan(gym_id=gym, plan_id=plan, expected_version=1))
    bad = PlanChanges(term=Term(months=1, days=3))
    with pytest.raises(InvalidValue):  # wrong on its own: 422 before the 412
        handle(ledger, ctx, ChangePlan(gym_id=gym, plan_id=plan, changes=bad, expected_version=1))
    handle(ledger, ctx, RetirePlan(gym_id=gym, plan_id=plan, expected_version=2))
    assert handle(ledger, ctx, RetirePlan(gym_id=gym, plan_id=plan)).position == 0
    assert load_plan(ledger, gym, plan).retired


def test_a_plan_creation_retried_with_its_key(ledger: GymLedger, ctx: CommandContext) -> None:
    gym = handle(ledger, ctx, signup()).id
    first = handle(ledger, ctx, CreatePlan(gym_id=gym, plan=MONTHLY, idempotency_key="p1"))
    again = handle(ledger, ctx, CreatePlan(gym_id=gym, plan=MONTHLY, idempotency_key="p1"))
    assert (again.id, again.replayed) == (first.id, True)
    with pytest.raises(IdempotencyKeyReused):
        handle(
            ledger, ctx, CreatePlan(gym_id=gym, plan=MONTHLY, idempotency_key="p1", fingerprint="x")
        )


def test_plans_and_memberships_are_scoped_to_their_gym(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym, customer, plan, sold = setup_sale(ledger, ctx)
    other = handle(ledger, ctx, signup()).id
    theirs_customer = handle(ledger, ctx, new_customer(other)).id
    freeze = FreezeRequest(starts_on=date(2026, 3, 2), ends_on=date(2026, 3, 3))
    for command in (
        ChangePlan(gym_id=other, plan_id=plan, changes=PlanChanges(name="X")),
        RetirePlan(gym_id=other, plan_id=plan),
        RetirePlan(gym_id=gym, plan_id=customer),  # a customer's stream is no plan
        sale(other, theirs_customer, plan),  # another gym's plan
        sale(gym, theirs_customer, plan),  # another gym's customer
        sale(gym, uuid4(), plan),
        sale(gym, customer, uuid4()),
        FreezeMembership(gym_id=other, membership_id=sold, request=freeze),
        RenewMembership(gym_id=other, membership_id=sold),
        RenewMembership(gym_id=gym, membership_id=plan),  # a plan's stream is no membership
        CancelMembership(
            gym_id=other, membership_id=sold, request=CancelRequest(effective_on=date(2026, 3, 5))
        ),
    ):
        with pytest.raises(NotFound):
            handle(ledger, ctx, command)
    with pytest.raises(NotFound):
        load_membership(ledger, other, sold)
    assert load_membership(ledger, None, sold).gym_id == gym  # the system's jobs see it


def test_a_sale_copies_the_plan_and_a_retired_plan_is_not_sold(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym, customer, plan, sold = setup_sale(ledger, ctx, max_freeze_days=10)
    held = load_membership(ledger, gym, sold)
    assert (held.starts_on, held.ends_on) == (date(2026, 3, 1), date(2026, 3, 31))
    assert (held.plan_name, held.price_cents, held.currency) == ("Monthly", 3900, "EUR")
    handle(ledger, ctx, ChangePlan(gym_id=gym, plan_id=plan, changes=PlanChanges(price_cents=1)))
    handle(ledger, ctx, RetirePlan(gym_id=gym, plan_id=plan))
    assert load_membership(ledger, gym, sold).price_cents == 3900  # sold before: unchanged
    with pytest.raises(PlanNotOnSale):
        handle(ledger, ctx, sale(gym, customer, plan))
    # Its memberships go on: renewed at the plan's current price.
    renewed = handle(ledger, ctx, RenewMembership(gym_id=gym, membership_id=sold))
    state = load_membership(ledger, gym, sold)
    assert (renewed.version, state.ends_on, state.price_cents) == (2, date(2026, 4, 30), 1)


def test_a_removed_customer_is_sold_nothing_and_their_memberships_are_gone(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym, customer, plan, sold = setup_sale(ledger, ctx)
    handle(ledger, ctx, RemoveCustomer(gym_id=gym, customer_id=customer))
    with pytest.raises(NotFound):
        handle(ledger, ctx, sale(gym, customer, plan))
    with pytest.raises(NotFound):
        handle(ledger, ctx, RenewMembership(gym_id=gym, membership_id=sold))


def test_freeze_and_unfreeze_move_the_end(ledger: GymLedger, ctx: CommandContext) -> None:
    gym, _, _, sold = setup_sale(ledger, ctx, max_freeze_days=10)
    week = FreezeRequest(starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 7), reason="trip")
    handle(ledger, ctx, FreezeMembership(gym_id=gym, membership_id=sold, request=week))
    assert load_membership(ledger, gym, sold).ends_on == date(2026, 4, 7)  # 7 days later
    overlap = FreezeRequest(starts_on=date(2026, 3, 7), ends_on=date(2026, 3, 8))
    with pytest.raises(MembershipRuleBroken):  # overlaps the first
        handle(ledger, ctx, FreezeMembership(gym_id=gym, membership_id=sold, request=overlap))
    over = FreezeRequest(starts_on=date(2026, 3, 10), ends_on=date(2026, 3, 13))
    with pytest.raises(MembershipRuleBroken):  # 7 + 4 days > 10
        handle(ledger, ctx, FreezeMembership(gym_id=gym, membership_id=sold, request=over))
    early = UnfreezeRequest(on=date(2026, 3, 4))  # frozen 1st-3rd: 4 days given back
    handle(ledger, ctx, UnfreezeMembership(gym_id=gym, membership_id=sold, request=early))
    state = load_membership(ledger, gym, sold)
    assert state.ends_on == date(2026, 4, 3)
    assert [(f.starts_on, f.ends_on) for f in state.freezes] == [
        (date(2026, 3, 1), date(2026, 3, 3))
    ]
    with pytest.raises(MembershipRuleBroken):  # not frozen that day
        handle(ledger, ctx, UnfreezeMembership(gym_id=gym, membership_id=sold, request=early))


def test_membership_rules_are_checked_before_the_precondition(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym, _, _, sold = setup_sale(ledger, ctx, max_freeze_days=10)
    backwards = FreezeRequest(starts_on=date(2026, 3, 7), ends_on=date(2026, 3, 1))
    with pytest.raises(InvalidValue):  # 422 although version 9 is wrong too
        handle(
            ledger,
            ctx,
            FreezeMembership(gym_id=gym, membership_id=sold, request=backwards, expected_version=9),
        )
    with pytest.raises(VersionConflict):
        handle(ledger, ctx, RenewMembership(gym_id=gym, membership_id=sold, expected_version=9))
    assert load_membership(ledger, gym, sold).version == 1  # nothing written
    assert (
        handle(
            ledger, ctx, RenewMembership(gym_id=gym, membership_id=sold, expected_version=1)
        ).version
        == 2
    )


def test_cancelling_twice_is_refused(ledger: GymLedger, ctx: CommandContext) -> None:
    gym, _, _, sold = setup_sale(ledger, ctx)
    cancel = CancelMembership(
        gym_id=gym, membership_id=sold, request=CancelRequest(effective_on=date(2026, 3, 15))
    )
    handle(ledger, ctx, cancel)
    with pytest.raises(MembershipRuleBroken):
        handle(ledger, ctx, cancel)
    with pytest.raises(MembershipRuleBroken):  # nothing is renewed once cancelled
        handle(ledger, ctx, RenewMembership(gym_id=gym, membership_id=sold))


def test_membership_commands_retried_with_their_key(ledger: GymLedger, ctx: CommandContext) -> None:
    gym = handle(ledger, ctx, signup()).id
    customer = handle(ledger, ctx, new_customer(gym)).id
    plan = plan_for(ledger, ctx, gym, max_freeze_days=10)
    first = handle(ledger, ctx, sale(gym, customer, plan, idempotency_key="s", fingerprint="a"))
    again = handle(ledger, ctx, sale(gym, customer, plan, idempotency_key="s", fingerprint="a"))
    assert (again.id, again.version, again.replayed) == (first.id, 1, True)
    with pytest.raises(IdempotencyKeyReused):
        handle(ledger, ctx, sale(gym, customer, plan, idempotency_key="s", fingerprint="b"))
    week = FreezeRequest(starts_on=date(2026, 3, 1), ends_on=date(2026, 3, 7))
    freeze = FreezeMembership(
        gym_id=gym, membership_id=first.id, request=week, idempotency_key="f", fingerprint="f"
    )
    frozen = handle(ledger, ctx, freeze)
    handle(ledger, ctx, RenewMembership(gym_id=gym, membership_id=first.id))
    # The retry is answered with the version the freeze left, not the latest, and is
    # not refused as an overlap nor by its now stale If-Match.
    retried = handle(ledger, ctx, msgspec.structs.replace(freeze, expected_version=1))
    assert (retried.version, retried.replayed) == (frozen.version, True) == (2, True)
    assert load_membership(ledger, gym, first.id).version == 3
    with pytest.raises(IdempotencyKeyReused):
        handle(ledger, ctx, msgspec.structs.replace(freeze, fingerprint="other"))
