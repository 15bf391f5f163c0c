"""The API's per-process caches: open gyms and verified tokens (pure code)."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import jwt
import pytest
from litestar.exceptions import NotAuthorizedException

from api.auth import TokenClaims, claims_from_token, gym_access, issue_token, still_valid
from api.gym_cache import OpenGyms
from infra.clock import ManualClock
from projections.gyms import GymAccess

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
# A moment far from the wall clock's: every check below reads the clock it is given.
EPOCH = datetime(2041, 3, 4, 5, 6, 7, tzinfo=UTC)


def access(
    timezone: str = "UTC", generation: int = 0, revoked: frozenset[UUID] = frozenset()
) -> GymAccess:
    return GymAccess(timezone=timezone, token_generation=generation, revoked_auditor_tokens=revoked)


def test_a_remembered_gym_is_answered_until_forgotten() -> None:
    gyms = OpenGyms()
    gym_id = uuid4()
    gyms.remember(gym_id, access("Europe/Oslo"), gyms.epoch)
    assert gyms.access(gym_id) == access("Europe/Oslo")
    gyms.forget(gym_id)
    assert gyms.access(gym_id) is None


def test_an_answer_read_while_a_change_was_announced_is_not_kept() -> None:
    gyms = OpenGyms()
    gym_id = uuid4()
    before_read = gyms.epoch
    gyms.forget(gym_id)  # the gym closed while its row was being read
    gyms.remember(gym_id, access(), before_read)
    assert gyms.access(gym_id) is None


def test_forget_all_and_the_size_bound() -> None:
    gyms = OpenGyms(max_gyms=2)
    first, second, third = uuid4(), uuid4(), uuid4()
    for gym_id in (first, second, third):
        gyms.remember(gym_id, access(), gyms.epoch)
    assert gyms.access(first) is None  # the oldest made room
    assert gyms.access(third) == access()
    gyms.forget_all()
    assert gyms.access(second) is None
    assert gyms.access(third) is None


def test_a_verified_token_still_expires() -> None:
    clock = ManualClock(EPOCH)
    gym_id = uuid4()
    token = issue_token(gym_id, SECRET, EPOCH + timedelta(seconds=1), issued_at=EPOCH)
    claims = claims_from_token(token, SECRET, clock.now())  # now cached
    assert (claims.gym_id, claims.scope, claims.generation) == (gym_id, "owner", 0)
    clock.set(EPOCH + timedelta(milliseconds=999))
    assert claims_from_token(token, SECRET, clock.now()) == claims
    clock.set(EPOCH + timedelta(seconds=1))  # exp is the first moment it is refused
    with pytest.raises(NotAuthorizedException):
        claims_from_token(token, SECRET, clock.now())


def test_a_token_is_not_taken_before_it_was_issued_or_its_not_before() -> None:
    early = issue_token(uuid4(), SECRET, EPOCH + timedelta(hours=1), issued_at=EPOCH)
    with pytest.raises(NotAuthorizedException):
        claims_from_token(early, SECRET, EPOCH - timedelta(seconds=1))
    assert claims_from_token(early, SECRET, EPOCH).issued_at == int(EPOCH.timestamp())
    body = {"sub": str(uuid4()), "iat": EPOCH, "exp": EPOCH + timedelta(hours=1)}
    later = jwt.encode({**body, "nbf": EPOCH + timedelta(minutes=5)}, SECRET)
    with pytest.raises(NotAuthorizedException):
        claims_from_token(later, SECRET, EPOCH + timedelta(minutes=4))
    assert claims_from_token(later, SECRET, EPOCH + timedelta(minutes=5)).not_before is not None


def test_times_that_are_not_whole_seconds_make_a_bad_token() -> None:
    body = {"sub": str(uuid4()), "iat": int(EPOCH.timestamp())}
    for exp in ("soon", [1], float("nan"), float("inf")):
        token = jwt.encode({**body, "exp": exp}, SECRET)
        with pytest.raises(NotAuthorizedException):
            claims_from_token(token, SECRET, EPOCH)


def test_the_systems_clock_refuses_what_the_wall_clock_says_expired() -> None:
    now = datetime.now(UTC)
    token = issue_token(uuid4(), SECRET, now - timedelta(seconds=1), issued_at=now)
    with pytest.raises(NotAuthorizedException):
        claims_from_token(token, SECRET, datetime.now(UTC))


def test_a_token_is_checked_against_the_secret_it_is_used_with() -> None:
    token = issue_token(uuid4(), SECRET, EPOCH + timedelta(hours=1), issued_at=EPOCH)
    claims_from_token(token, SECRET, EPOCH)
    with pytest.raises(NotAuthorizedException):
        claims_from_token(token, "another-secret-another-secret-another-secret", EPOCH)


def claims(scope: str = "owner", generation: int = 0, token_id: UUID | None = None) -> TokenClaims:
    expires, issued = int(EPOCH.timestamp()) + 60, int(EPOCH.timestamp())
    return TokenClaims(uuid4(), scope, generation, token_id, expires, issued)  # type: ignore[arg-type]


def test_a_token_is_valid_only_in_the_gyms_current_generation() -> None:
    assert still_valid(claims(generation=0), access(generation=0))
    assert not still_valid(claims(generation=0), access(generation=1))
    assert not still_valid(claims(generation=2), access(generation=1))  # never issued


def test_a_revoked_auditor_token_is_refused_and_only_that_one() -> None:
    revoked, other = uuid4(), uuid4()
    gym = access(revoked=frozenset({revoked}))
    assert not still_valid(claims("auditor", token_id=revoked), gym)
    assert still_valid(claims("auditor", token_id=other), gym)
    # An owner token's id is not an auditor token's, even if it were the same uuid.
    assert still_valid(claims("owner", token_id=revoked), gym)


def test_tokens_carry_their_generation_and_tokens_without_one_are_generation_zero() -> None:
    expires = EPOCH + timedelta(hours=1)
    token = issue_token(uuid4(), SECRET, expires, generation=3, issued_at=EPOCH)
    assert claims_from_token(token, SECRET, EPOCH).generation == 3
    legacy = jwt.encode({"sub": str(uuid4()), "iat": EPOCH, "exp": expires}, SECRET)
    found = claims_from_token(legacy, SECRET, EPOCH)
    assert (found.scope, found.generation, found.token_id) == ("owner", 0, None)


@pytest.mark.parametrize("generation", [True, -1, "1", 1.0, None, [1]])
def test_a_malformed_generation_claim_is_a_bad_token(generation: object) -> None:
    body = {"sub": str(uuid4()), "iat": EPOCH, "exp": EPOCH + timedelta(hours=1), "gen": generation}
    with pytest.raises(NotAuthorizedException):
        claims_from_token(jwt.encode(body, SECRET), SECRET, EPOCH)


def test_only_auditor_tokens_need_an_id_of_ours() -> None:
    body = {"sub": str(uuid4()), "iat": EPOCH, "exp": EPOCH + timedelta(hours=1), "jti": "abc"}
    assert claims_from_token(jwt.encode(body, SECRET), SECRET, EPOCH).token_id is None
    auditor = jwt.encode({**body, "scope": "auditor"}, SECRET)
    with pytest.raises(NotAuthorizedException):
        claims_from_token(auditor, SECRET, EPOCH)


class ReadModel:
    """The gyms read model as `gym_access` sees it: what it would read, and how often."""

    def __init__(self, rows: dict[UUID, GymAccess]) -> None:
        self.rows = rows
        self.reads = 0

    async def read(self, gym_id: UUID) -> GymAccess | None:
        self.reads += 1
        return self.rows.get(gym_id)


def owner_claims(gym_id: UUID, generation: int) -> TokenClaims:
    moment = int(EPOCH.timestamp())
    return TokenClaims(gym_id, "owner", generation, None, moment + 60, moment)


async def test_a_token_newer_than_the_cache_is_checked_against_the_read_model() -> None:
    """A password change this process has not heard of yet (the projector's
    announcement is still on its way): the new login's token must not get a 401."""
    gyms, gym_id = OpenGyms(), uuid4()
    gyms.remember(gym_id, access(generation=0), gyms.epoch)  # from before the change
    read_model = ReadModel({gym_id: access(generation=1)})
    found = await gym_access(gyms, owner_claims(gym_id, 1), read_model.read)
    assert found == access(generation=1)
    assert still_valid(owner_claims(gym_id, 1), found)
    assert read_model.reads == 1
    assert gyms.access(gym_id) == access(generation=1)  # the cache has caught up too


async def test_a_token_newer_than_the_read_model_is_still_refused() -> None:
    gyms, gym_id = OpenGyms(), uuid4()
    gyms.remember(gym_id, access(generation=1), gyms.epoch)
    read_model = ReadModel({gym_id: access(generation=1)})
    found = await gym_access(gyms, owner_claims(gym_id, 2), read_model.read)
    assert found is not None
    assert not still_valid(owner_claims(gym_id, 2), found)  # a generation never reached
    assert read_model.reads == 1


async def test_tokens_of_the_cached_or_an_older_generation_are_answered_from_the_cache() -> None:
    """Exact, and without a database round trip: an older generation stays refused."""
    gyms, gym_id = OpenGyms(), uuid4()
    gyms.remember(gym_id, access(generation=1), gyms.epoch)
    read_model = ReadModel({gym_id: access(generation=5)})  # must not be consulted
    for generation, valid in ((0, False), (1, True)):
        found = await gym_access(gyms, owner_claims(gym_id, generation), read_model.read)
        assert found == access(generation=1)
        assert still_valid(owner_claims(gym_id, generation), found) is valid
    assert read_model.reads == 0


async def test_an_unknown_or_closed_gym_is_read_every_time_and_not_remembered() -> None:
    gyms, gym_id = OpenGyms(), uuid4()
    read_model = ReadModel({})
    for _ in range(2):
        assert await gym_access(gyms, owner_claims(gym_id, 0), read_model.read) is None
    assert read_model.reads == 2
    assert gyms.access(gym_id) is None
