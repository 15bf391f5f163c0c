"""argon2id password hashing with OWASP's recommended parameters.

argon2-cffi's default (RFC 9106's low-memory option: 64 MiB, 3 passes, 4 lanes)
made every sign-up and login allocate 64 MiB inside an API process: its peak
resident memory doubled during a login (bench/README.md), and a burst of
concurrent logins could exhaust a pod's memory. OWASP's Password Storage Cheat
Sheet gives 19 MiB with 2 passes and 1 lane as an equivalent configuration.
Hashes carry their own parameters, so hashes made with the old ones still verify,
and are replaced at the owner's next login (`needs_rehash`, commands/gyms.py).
"""

from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MEMORY_KIB = 19 * 1024
_hasher = PasswordHasher(time_cost=2, memory_cost=MEMORY_KIB, parallelism=1)

# Verified against when an email is unknown, so both paths cost the same time
# and login timing does not reveal which emails are registered.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def needs_rehash(password_hash: str) -> bool:
    """Made with other parameters than today's (say, the earlier 64 MiB ones)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Passwords:
    """How the write side hashes and checks passwords, passed in by bootstrap() so the
    in-memory unit tests can use cheap argon2 parameters."""

    hash: Callable[[str], str]
    verify: Callable[[str | None, str], bool]
    needs_rehash: Callable[[str], bool]


ARGON2 = Passwords(hash=hash_password, verify=verify_password, needs_rehash=needs_rehash)
