"""argon2id password hashing with OWASP's recommended parameters.

argon2-cffi's default (RFC 9106's low-memory option: 64 MiB, 3 passes, 4 lanes)
made every sign-up and login allocate 64 MiB inside an API process: its peak
resident memory doubled during a login (bench/README.md), and a burst of
concurrent logins could exhaust a pod's memory. OWASP's Password Storage Cheat
Sheet gives 19 MiB with 2 passes and 1 lane as an equivalent configuration.
Hashes carry their own parameters, so hashes made with the old ones still verify,
and are replaced at the owner's next login (`needs_rehash`, commands/gyms.py).
"""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MEMORY_KIB = 19 * 1024


class Argon2Passwords:
    """How the write side and the login hash and check passwords. bootstrap() hands
    every process OWASP's parameters (ARGON2); the in-memory unit tests make one with
    the cheapest parameters argon2 allows, the same code path at a fraction of the cost."""

    def __init__(self, time_cost: int = 2, memory_kib: int = MEMORY_KIB) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verified against when an email is unknown, so both paths cost the same time
        # and login timing does not reveal which emails are registered.
        self._dummy_hash = self._hasher.hash("not-a-real-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Made with other parameters than today's (say, the earlier 64 MiB ones)."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and bool(
                password_hash
            )
        except (VerificationError, InvalidHashError):
            return False


ARGON2 = Argon2Passwords()
hash_password = ARGON2.hash
needs_rehash = ARGON2.needs_rehash
verify_password = ARGON2.verify
