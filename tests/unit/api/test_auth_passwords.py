"""argon2id password hashing, and the gate that bounds how many hashes run at once."""

from __future__ import annotations

import threading
import time

import pytest

from mediaflow_api.auth.passwords import HashingBusyError, PasswordHashing

# Small parameters: these tests are about the behaviour, not the cost.
SMALL = 19 * 1024


@pytest.fixture(scope="module")
def hashing() -> PasswordHashing:
    return PasswordHashing(memory_kib=SMALL)


def test_hash_is_salted_argon2id_without_the_password(hashing: PasswordHashing) -> None:
    first, second = hashing.hash("correct horse"), hashing.hash("correct horse")
    assert first.startswith(f"$argon2id$v=19$m={SMALL},t=3,p=4$")
    assert first != second  # a fresh salt each time
    assert "correct horse" not in first


def test_verify(hashing: PasswordHashing) -> None:
    stored = hashing.hash("correct horse")
    assert hashing.verify(stored, "correct horse")
    assert not hashing.verify(stored, "Correct horse")
    assert not hashing.verify(stored, "")


def test_unknown_user_and_broken_hash_fail(hashing: PasswordHashing) -> None:
    assert not hashing.verify(None, "mediaflow-no-such-user")  # not even the dummy's password
    assert not hashing.verify("not a hash", "anything")


def test_a_hash_made_with_other_parameters_still_verifies(hashing: PasswordHashing) -> None:
    older = PasswordHashing(memory_kib=SMALL + 1024).hash("correct horse")
    assert hashing.verify(older, "correct horse")


class Held(PasswordHashing):
    """Hashing whose argon2 call waits for `release`, counting how many run at once."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(memory_kib=SMALL, **kwargs)  # type: ignore[arg-type]
        self.release = threading.Event()
        self.running = 0
        self.most = 0
        self._count = threading.Lock()
        self._hasher = self.Hasher(self, self._hasher)  # type: ignore[assignment]

    class Hasher:
        def __init__(self, outer: Held, inner: object) -> None:
            self.outer, self.inner = outer, inner

        def hash(self, password: str) -> str:
            outer = self.outer
            with outer._count:
                outer.running += 1
                outer.most = max(outer.most, outer.running)
            outer.release.wait(10)
            with outer._count:
                outer.running -= 1
            return self.inner.hash(password)  # type: ignore[attr-defined]


def _in_threads(hashing: PasswordHashing, count: int) -> tuple[list[str], list[Exception]]:
    done: list[str] = []
    refused: list[Exception] = []

    def one() -> None:
        try:
            done.append(hashing.hash("pw"))
        except HashingBusyError as error:
            refused.append(error)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    return done, refused, threads  # type: ignore[return-value]


def test_at_most_concurrency_run_and_the_queue_is_bounded() -> None:
    hashing = Held(concurrency=2, max_waiting=3, queue_seconds=10)
    done, refused, threads = _in_threads(hashing, 8)
    deadline = time.monotonic() + 10
    # 2 run, 3 wait, 3 are refused at once (without waiting for the deadline).
    while len(refused) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(refused) == 3
    assert all(error.retry_after_seconds == 10 for error in refused)
    hashing.release.set()
    for thread in threads:
        thread.join()
    assert len(done) == 5
    assert hashing.most == 2


def test_waiting_past_the_deadline_is_refused() -> None:
    hashing = Held(concurrency=1, max_waiting=5, queue_seconds=0.2)
    done, refused, threads = _in_threads(hashing, 3)
    deadline = time.monotonic() + 10
    while len(refused) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(refused) == 2  # both waiters gave up after 0.2 s
    hashing.release.set()
    for thread in threads:
        thread.join()
    assert len(done) == 1
    assert hashing.running == 0


def test_the_unknown_email_dummy_goes_through_the_gate() -> None:
    hashing = PasswordHashing(concurrency=1, max_waiting=0, queue_seconds=0.1, memory_kib=SMALL)
    # The only slot is taken: an unknown email is refused as well.
    with hashing._slot(), pytest.raises(HashingBusyError):
        hashing.verify(None, "whatever")
    assert not hashing.verify(None, "whatever")
