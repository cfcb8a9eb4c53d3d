"""The retry policy with sleep patched out: which errors are retried, how often, how long, and logging."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pytest

from steerlm.errors import (
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    RequestTimeoutError,
    ServerOverloadedError,
    ServerUnavailableError,
    StreamInterruptedError,
    TritonError,
)
from steerlm.retry import RetryPolicy, is_retryable


def flaky(errors: Sequence[BaseException]) -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "ok"

    return fn, calls


def run(policy: RetryPolicy, fn: Callable[[], str], sleeps: list[float]) -> str:
    """The clients' loop shape: attempt, and on failure `pause` (which re-raises when it says stop)."""
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            attempt += 1
            sleeps.append(policy.pause(attempt, exc))


@pytest.mark.parametrize("error", [ServerUnavailableError("down"), RequestTimeoutError("slow"),
                                   ServerOverloadedError("busy")])
def test_retryable_errors_are_retried_then_succeed(error: TritonError) -> None:
    fn, calls = flaky([error, error])
    sleeps: list[float] = []
    assert run(RetryPolicy(2), fn, sleeps) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("error", [InvalidRequestError("bad"), ModelNotFoundError("nope"),
                                   StreamInterruptedError("cut", partial_text="ab"), ConfigurationError("x"),
                                   ValueError("not ours")])
def test_other_errors_are_raised_at_once(error: Exception) -> None:
    fn, calls = flaky([error])
    sleeps: list[float] = []
    with pytest.raises(type(error)):
        run(RetryPolicy(5), fn, sleeps)
    assert len(calls) == 1 and sleeps == []


def test_gives_up_after_max_retries_with_the_last_error_itself() -> None:
    errors = [ServerUnavailableError(f"down {i}") for i in range(5)]
    fn, calls = flaky(errors)
    with pytest.raises(ServerUnavailableError, match="down 2"):
        run(RetryPolicy(2), fn, [])
    assert len(calls) == 3


def test_zero_disables_retries() -> None:
    fn, calls = flaky([ServerUnavailableError("down")])
    with pytest.raises(ServerUnavailableError):
        run(RetryPolicy(0), fn, [])
    assert len(calls) == 1


def test_backoff_grows_from_half_a_second_to_eight_with_jitter() -> None:
    fn, _ = flaky([ServerUnavailableError("down")] * 7)
    sleeps: list[float] = []
    assert run(RetryPolicy(7), fn, sleeps) == "ok"
    bases = [0.5, 1, 2, 4, 8, 8, 8]
    for slept, base in zip(sleeps, bases, strict=True):
        assert base <= slept <= min(base + 0.5, 8.0)


def test_retry_after_is_honoured_and_capped() -> None:
    fn, _ = flaky([ServerOverloadedError("busy", retry_after=30), ServerOverloadedError("busy", retry_after=999)])
    sleeps: list[float] = []
    assert run(RetryPolicy(2), fn, sleeps) == "ok"
    assert sleeps[0] == 30 and sleeps[1] == 120


def test_each_retry_is_logged_at_warning_with_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    fn, _ = flaky([ServerUnavailableError("connection refused")])
    with caplog.at_level(logging.WARNING, logger="steerlm.retry"):
        run(RetryPolicy(2), fn, [])
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "ServerUnavailableError" in record.getMessage() and "connection refused" in record.getMessage()
    assert "attempt 2 of 3" in record.getMessage()


def test_validation() -> None:
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ConfigurationError):
            RetryPolicy(bad)  # type: ignore[arg-type]
    assert is_retryable(RequestTimeoutError("x")) and not is_retryable(InvalidRequestError("x"))
    assert RetryPolicy(1).should_retry(1, ServerUnavailableError("x"))
    assert not RetryPolicy(1).should_retry(2, ServerUnavailableError("x"))
    assert not RetryPolicy(0).should_retry(1, ServerUnavailableError("x"))
    assert not RetryPolicy(3).should_retry(1, InvalidRequestError("x"))


def test_delay_without_an_error_is_plain_backoff() -> None:
    assert 0.5 <= RetryPolicy(2).delay(1, None) <= 1.0
    assert RetryPolicy(2).delay(40, None) == 8.0
