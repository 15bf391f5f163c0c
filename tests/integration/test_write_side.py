"""The write side against real PostgreSQL: atomic appends and email uniqueness races."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from commands.application import GymLedger
from commands.check_ins import RecordCheckIn
from commands.context import CommandContext
from commands.customers import NewCustomer, RegisterCustomer
from commands.gyms import CloseGym, UpdateGymProfile, close_gym, load_gym, update_gym_profile
from domain import gym, gym_of
from domain.check_in import CheckInRecorded, NewCheckIn
from domain.errors import EmailAlreadyRegistered, GymIsClosed
from infra.event_codec import CODEC
from projections.engine import Recorded
from tests.conftest import unique_email
from tests.integration.helpers import head_position, register


@pytest.mark.parametrize("contenders", [2, 12])
def test_simultaneous_signups_with_one_email_let_exactly_one_win(
    ledger: GymLedger, contenders: int
) -> None:
    email = unique_email("race")

    def attempt(_: int) -> str:
        try:
            register(ledger, email=email)
        except EmailAlreadyRegistered:
            return "refused"
        return "created"

    with ThreadPoolExecutor(contenders) as pool:
        outcomes = list(pool.map(attempt, range(contenders)))
    assert outcomes.count("created") == 1
    assert outcomes.count("refused") == contenders - 1


def test_closing_releases_the_email_for_a_new_signup(ledger: GymLedger) -> None:
    email = unique_email()
    first = register(ledger, email=email)
    with pytest.raises(EmailAlreadyRegistered):
        register(ledger, email=email)
    close_gym(ledger, CloseGym(gym_id=first.id), CommandContext.system())
    second = register(ledger, email=email)
    assert second.id != first.id
    with pytest.raises(GymIsClosed):
        update_gym_profile(
            ledger,
            UpdateGymProfile(gym_id=first.id, changes=gym.ProfileChanges(name="Zombie")),
            CommandContext.system(),
        )


def test_concurrent_updates_never_lose_a_write(ledger: GymLedger) -> None:
    """Writers racing on one gym: each stored version is decided on the state before
    it, and none is refused for having lost the race (none named a version)."""
    gym_id = register(ledger).id

    def rename(i: int) -> Any:
        changes = gym.ProfileChanges(name=f"Name {i}")
        return update_gym_profile(
            ledger, UpdateGymProfile(gym_id=gym_id, changes=changes), CommandContext.system()
        )

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(rename, range(40)))
    versions = sorted(r.version for r in results)
    assert versions == list(range(2, 42))  # every write landed, no version written twice
    assert load_gym(ledger, gym_id).version == 41


def test_metadata_names_actor_and_correlation(ledger: GymLedger) -> None:
    ctx = CommandContext(actor="someone", correlation_id="corr-42")
    result = register(ledger)
    update_gym_profile(
        ledger,
        UpdateGymProfile(gym_id=result.id, changes=gym.ProfileChanges(name="Meta Gym")),
        ctx,
    )
    events: list[Any] = list(ledger.events.get(result.id))
    assert events[-1].metadata.actor == "someone"
    assert events[-1].metadata.correlation_id == "corr-42"
    assert events[0].metadata.actor == "system"


def events_of_gym_after(database_url: str, gym_id: Any, position: int) -> list[str]:
    """The types of the gym's events stored after `position` (the session's other
    writers, its expiry job among them, may append events of their own meanwhile)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM gymledger_events WHERE notification_id > %s",
            (position,),
        ).fetchall()
    events = [Recorded.decode(CODEC, *row).event for row in rows]
    return [type(e).__name__ for e in events if gym_of(e) == gym_id]


def in_another_process(database_url: str, command: Any) -> None:
    """Handle `command` on a ledger of its own: what another API process would do."""
    other_process = GymLedger(database_url, pool_size=1)
    try:
        other_process.handle(command, CommandContext.system())
    finally:
        other_process.close()


def customer_command(gym_id: Any) -> RegisterCustomer:
    details = NewCustomer(first_name="Guard", last_name="Ed", email=unique_email("member"))
    return RegisterCustomer(gym_id=gym_id, details=details)


def test_a_customer_command_on_a_gym_another_process_closed_is_refused(
    settings: Any, ledger: GymLedger
) -> None:
    """This process has the gym cached as open; another process (its own ledger) closes
    it. The guard on the append refuses the stale decision, the retry reads the gym
    again and refuses the command: nothing is stored for it."""
    gym_id = register(ledger).id
    ledger.handle(customer_command(gym_id), CommandContext.system())  # cached: open
    in_another_process(settings.database_url, CloseGym(gym_id=gym_id))
    before = head_position(settings.database_url)
    with pytest.raises(GymIsClosed):
        ledger.handle(customer_command(gym_id), CommandContext.system())
    assert events_of_gym_after(settings.database_url, gym_id, before) == []


def test_a_customer_command_on_a_known_gym_reads_none_of_its_stream(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: after the first, a customer command reads nothing of its gym's stream
    (the guard stands in for the read), and a gym changed elsewhere is read once."""
    ledger = GymLedger(settings.database_url, pool_size=2)
    try:
        gym_id = register(ledger).id
        ledger.handle(customer_command(gym_id), CommandContext.system())
        reads: list[Any] = []
        select = ledger.recorder.select_events

        def counting(originator_id: Any, *args: Any, **kwargs: Any) -> Any:
            reads.append(originator_id)
            return select(originator_id, *args, **kwargs)

        monkeypatch.setattr(ledger.recorder, "select_events", counting)
        for _ in range(5):
            ledger.handle(customer_command(gym_id), CommandContext.system())
        assert gym_id not in reads
        changes = gym.ProfileChanges(timezone="America/New_York")
        in_another_process(settings.database_url, UpdateGymProfile(gym_id=gym_id, changes=changes))
        ledger.handle(customer_command(gym_id), CommandContext.system())
        ledger.handle(customer_command(gym_id), CommandContext.system())
        assert reads.count(gym_id) == 1
        assert ledger.latest.cached(gym_id, gym.project) is not None
    finally:
        ledger.close()


def test_a_check_in_at_a_gym_another_process_closed_is_refused(
    settings: Any, ledger: GymLedger
) -> None:
    """As for customers: check-ins decide on the cached gym, guarded by its version."""
    gym_id = register(ledger).id
    customer_id = ledger.handle(customer_command(gym_id), CommandContext.system()).id
    scan = RecordCheckIn(gym_id=gym_id, request=NewCheckIn(customer_id=customer_id))
    first = ledger.handle(scan, CommandContext.system()).state  # the gym cached: open
    assert isinstance(first, CheckInRecorded)
    assert not first.allowed  # no membership
    in_another_process(settings.database_url, CloseGym(gym_id=gym_id))
    before = head_position(settings.database_url)
    with pytest.raises(GymIsClosed):
        ledger.handle(scan, CommandContext.system())
    assert events_of_gym_after(settings.database_url, gym_id, before) == []
