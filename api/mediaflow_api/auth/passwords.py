"""Password hashing with argon2id, bounded per process.

Each argon2id hash or verification holds `memory_kib` of memory for its duration and
releases the GIL, so parallel logins run truly in parallel: ten of them at 64 MiB took an
API pod past its 512 MiB limit. `PasswordHashing` lets at most `concurrency` run at once,
queues at most `max_waiting` more for at most `queue_seconds`, and refuses the rest with
`HashingBusyError` (answered 503 with Retry-After). Registering (a hash), logging in (a
verification) and the dummy verification of an unknown email all pass the same gate, so an
unknown email still costs, and takes, what a wrong password does.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
# RFC 9106's second recommended profile (argon2-cffi's defaults): argon2id, t=3, 4 lanes.
TIME_COST = 3
PARALLELISM = 4
DEFAULT_MEMORY_KIB = 64 * 1024


class HashingBusyError(Exception):
    """Every hashing slot is taken and the queue is full or its deadline passed."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("password hashing is at capacity")
        self.retry_after_seconds = retry_after_seconds


class PasswordHashing:
    """argon2id hashing and verification, at most `concurrency` at once in this process.

    Peak memory of hashing is `concurrency * memory_kib` (argon2 allocates its matrix with
    one malloc, above glibc's mmap threshold, so it is returned to the system when done).
    Waiting callers hold a worker thread, hence the bounded queue.
    """

    def __init__(
        self,
        concurrency: int = 2,
        max_waiting: int = 8,
        queue_seconds: float = 5.0,
        memory_kib: int = DEFAULT_MEMORY_KIB,
    ) -> None:
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.queue_seconds = queue_seconds
        self.memory_kib = memory_kib
        self._hasher = PasswordHasher(
            time_cost=TIME_COST, memory_cost=memory_kib, parallelism=PARALLELISM
        )
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._waiting = 0
        # Verified against when the email is unknown, so that both failures cost the same.
        self._dummy_hash = self._hasher.hash("mediaflow-no-such-user")

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil(self.queue_seconds))

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self.max_waiting:
                    raise HashingBusyError(self.retry_after_seconds)
                self._waiting += 1
            try:
                acquired = self._slots.acquire(timeout=self.queue_seconds)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not acquired:
                raise HashingBusyError(self.retry_after_seconds)
        try:
            yield
        finally:
            self._slots.release()

    def hash(self, password: str) -> str:
        """The argon2id PHC string of `password` (salted, parameters included)."""
        with self._slot():
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; `None` (unknown user) costs a verification too, then
        fails."""
        with self._slot():
            try:
                verified = self._hasher.verify(password_hash or self._dummy_hash, password)
            except (VerificationError, InvalidHashError):
                return False
        return verified and password_hash is not None
