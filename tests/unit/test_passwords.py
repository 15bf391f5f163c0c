"""Password hashing parameters and compatibility (pure code, real argon2)."""

from argon2 import PasswordHasher, extract_parameters

from infra.passwords import MEMORY_KIB, hash_password, verify_password


def test_new_hashes_use_the_bounded_memory_parameters() -> None:
    parameters = extract_parameters(hash_password("correct horse"))
    assert (parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (
        MEMORY_KIB,
        2,
        1,
    )
    assert MEMORY_KIB <= 19 * 1024  # what a login may allocate in an API process


def test_hashes_made_with_the_earlier_defaults_still_verify() -> None:
    earlier = PasswordHasher().hash("correct horse")  # 64 MiB, 3 passes, 4 lanes
    assert verify_password(earlier, "correct horse")
    assert not verify_password(earlier, "wrong horse")


def test_an_unknown_user_never_verifies() -> None:
    assert not verify_password(None, "not-a-real-password")
