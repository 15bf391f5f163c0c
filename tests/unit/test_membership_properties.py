"""Properties of the membership domain: whatever sequence of sell, freeze, unfreeze,
renew and cancel commands arrives (refused ones change nothing),

- `ends_on` is never before `starts_on`, nor before the current term's first day;
- the frozen days of the current term stay within the plan's limit, and no two
  freezes overlap;
- replaying the recorded events (the domain's own fold) gives the state.
"""

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import membership, plan
from domain.errors import DomainError, MembershipRuleBroken
from domain.events import DomainEvent, EventMetadata, Stamp
from domain.membership import CancelRequest, FreezeRequest, UnfreezeRequest
from domain.terms import Term, term_end

START = datetime(2026, 1, 1, 9, tzinfo=UTC)
META = EventMetadata(actor="test", correlation_id="property")
FIRST_DAY = date(2026, 1, 31)

terms = st.one_of(
    st.builds(Term, months=st.integers(1, 3)), st.builds(Term, days=st.integers(1, 40))
)
operation = st.one_of(
    st.tuples(st.just("freeze"), st.integers(-5, 90), st.integers(0, 12)),
    st.tuples(st.just("unfreeze"), st.integers(-5, 90), st.just(0)),
    st.tuples(st.just("renew"), st.just(0), st.just(0)),
    st.tuples(st.just("cancel"), st.integers(-5, 150), st.just(0)),
)


def _stamp(step: int) -> Stamp:
    return Stamp(at=START + timedelta(minutes=step), metadata=META)


def _decide(
    m: membership.Membership, sold_plan: plan.Plan, op: tuple[str, int, int], step: int
) -> DomainEvent:
    kind, offset, length = op
    day = FIRST_DAY + timedelta(days=offset)
    stamp = _stamp(step)
    if kind == "freeze":
        request = FreezeRequest(starts_on=day, ends_on=day + timedelta(days=length))
        return membership.freeze(m, request, stamp)
    if kind == "unfreeze":
        return membership.unfreeze(m, UnfreezeRequest(on=day), stamp)
    if kind == "renew":
        return membership.renew(m, sold_plan, stamp)
    return membership.cancel(m, CancelRequest(effective_on=day), stamp)


def _check(m: membership.Membership, term_starts: list[date]) -> None:
    """`term_starts`: the first day of every term so far, in order."""
    assert m.starts_on <= m.term_starts_on <= m.ends_on
    assert membership.frozen_days_this_term(m) <= m.max_freeze_days
    for term_start, next_start in zip(term_starts, [*term_starts[1:], date.max], strict=True):
        in_term = [f for f in m.freezes if term_start <= f.starts_on < next_start]
        assert sum(f.days for f in in_term) <= m.max_freeze_days, (term_start, in_term)
    for earlier, later in zip(m.freezes, m.freezes[1:], strict=False):
        assert earlier.ends_on < later.starts_on  # sorted, and never overlapping
    assert all(f.starts_on <= f.ends_on for f in m.freezes)


@settings(max_examples=300, deadline=None)
@given(
    term=terms,
    max_freeze_days=st.integers(0, 15),
    operations=st.lists(operation, max_size=25),
)
def test_any_command_sequence_keeps_the_invariants_and_replays_to_the_state(
    term: Term, max_freeze_days: int, operations: list[tuple[str, int, Any]]
) -> None:
    new = plan.NewPlan(
        name="P", price_cents=100, currency="EUR", term=term, max_freeze_days=max_freeze_days
    )
    sold_plan = plan.project(None, [plan.create(uuid.uuid4(), uuid.uuid4(), new, _stamp(0))])
    assert sold_plan is not None
    sold = membership.sell(uuid.uuid4(), uuid.uuid4(), sold_plan, FIRST_DAY, _stamp(0))
    events: list[DomainEvent] = [sold]
    state = membership.evolve(None, sold)
    term_starts = [state.starts_on]
    _check(state, term_starts)
    for step, op in enumerate(operations, start=1):
        try:
            event = _decide(state, sold_plan, op, step)
        except DomainError:
            continue  # refused: nothing recorded, nothing changed
        events.append(event)
        before, state = state, membership.evolve(state, event)
        if isinstance(event, membership.MembershipRenewed):
            term_starts.append(event.term_starts_on)
        if isinstance(event, membership.MembershipUnfrozen):
            # The days given back move every term after the freeze's earlier.
            back = before.ends_on - state.ends_on
            term_starts = [t - back if t > event.freeze_starts_on else t for t in term_starts]
        _check(state, term_starts)
    assert membership.project(None, events) == state
    assert state.version == len(events)


def test_unfreezing_a_freeze_renewed_over_moves_the_renewed_term_back() -> None:
    """Found by the property above: a freeze running past the term's end, a renewal
    from the extended end, then the freeze ended early. The days given back used to
    leave the renewed term starting after the membership's new last day."""
    new = plan.NewPlan(
        name="P", price_cents=1, currency="EUR", term=Term(days=5), max_freeze_days=9
    )
    sold_plan = plan.project(None, [plan.create(uuid.uuid4(), uuid.uuid4(), new, _stamp(0))])
    assert sold_plan is not None
    m = membership.evolve(
        None, membership.sell(uuid.uuid4(), uuid.uuid4(), sold_plan, FIRST_DAY, _stamp(0))
    )
    frozen = FreezeRequest(starts_on=date(2026, 2, 3), ends_on=date(2026, 2, 9))  # 7 days
    m = membership.evolve(m, membership.freeze(m, frozen, _stamp(1)))  # ends Feb 11
    m = membership.evolve(m, membership.renew(m, sold_plan, _stamp(2)))  # Feb 12 to 16
    m = membership.evolve(
        m, membership.unfreeze(m, UnfreezeRequest(on=date(2026, 2, 5)), _stamp(3))
    )
    # Frozen Feb 3 and 4 only: term 1 ends Feb 6, the renewed term runs Feb 7 to 11.
    assert (m.term_starts_on, m.ends_on) == (date(2026, 2, 7), date(2026, 2, 11))


def test_the_term_arithmetic_of_the_issue() -> None:
    month, thirty = Term(months=1), Term(days=30)
    assert term_end(date(2026, 1, 15), month) == date(2026, 2, 14)
    assert term_end(date(2026, 1, 1), thirty) == date(2026, 1, 30)
    assert term_end(date(2026, 1, 31), month) == date(2026, 2, 27)
    assert term_end(date(2026, 4, 1), month) == date(2026, 4, 30)  # a renewal of March


def test_a_term_recorded_as_expired_is_not_frozen_back_to_life() -> None:
    """Found in review: a back-dated freeze moved the end of a term whose expiry was
    recorded, and the term's real end was then never recorded."""
    new = plan.NewPlan(
        name="P", price_cents=1, currency="EUR", term=Term(days=10), max_freeze_days=9
    )
    sold_plan = plan.project(None, [plan.create(uuid.uuid4(), uuid.uuid4(), new, _stamp(0))])
    assert sold_plan is not None
    sale = membership.sell(uuid.uuid4(), uuid.uuid4(), sold_plan, FIRST_DAY, _stamp(0))
    m = membership.evolve(None, sale)
    expired = membership.expire(m, m.ends_on + timedelta(days=1), _stamp(1))
    assert expired is not None
    m = membership.evolve(m, expired)
    late = FreezeRequest(starts_on=m.ends_on - timedelta(days=2), ends_on=m.ends_on)
    with pytest.raises(MembershipRuleBroken):
        membership.freeze(m, late, _stamp(2))
