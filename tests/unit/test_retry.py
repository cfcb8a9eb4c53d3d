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
from steerlm.retry import RetryPolicy, aretrying, is_retryable, retrying


def flaky(errors: Sequence[BaseException]) -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "ok"

    return fn, calls


def run(policy: RetryPolicy, fn: Callable[[], str], sleeps: list[float]) -> str:
    for attempt in policy.retrying(sleep=sleeps.append):
        with attempt:
            return fn()
    raise AssertionError("unreachable")


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


async def test_async_loop_uses_the_same_policy() -> None:
    fn, calls = flaky([ServerUnavailableError("down"), RequestTimeoutError("slow")])
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async for attempt in RetryPolicy(2).aretrying(sleep=sleep):
        with attempt:
            result = fn()
    assert result == "ok" and len(calls) == 3 and len(sleeps) == 2


def test_shortcuts_and_validation() -> None:
    assert getattr(retrying(3).stop, "max_attempt_number") == 4  # noqa: B009
    assert getattr(aretrying(0).stop, "max_attempt_number") == 1  # noqa: B009
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ConfigurationError):
            RetryPolicy(bad)  # type: ignore[arg-type]
    assert is_retryable(RequestTimeoutError("x")) and not is_retryable(InvalidRequestError("x"))


def test_delay_without_an_error_is_plain_backoff() -> None:
    assert 0.5 <= RetryPolicy().delay(1, None) <= 1.0
    assert RetryPolicy().delay(40, None) == 8.0


def test_first_attempt_outside_tenacity_then_offset_controller(caplog: pytest.LogCaptureFixture) -> None:
    """The clients' fast path: attempt 1 bare, `pause`, then `retrying(offset=1)` — same totals."""
    policy = RetryPolicy(3)
    fn, calls = flaky([ServerUnavailableError("a"), ServerUnavailableError("b"), ServerUnavailableError("c"),
                       ServerUnavailableError("d")])
    sleeps: list[float] = []
    with caplog.at_level(logging.WARNING, logger="steerlm.retry"), pytest.raises(ServerUnavailableError, match="d"):
        try:
            fn()
        except ServerUnavailableError as exc:
            assert policy.should_retry(exc)
            sleeps.append(policy.pause(exc))
        for attempt in policy.retrying(sleep=sleeps.append, offset=1):
            with attempt:
                fn()
    assert len(calls) == 4
    for slept, base in zip(sleeps, [0.5, 1, 2], strict=True):
        assert base <= slept <= base + 0.5
    assert [r.getMessage().split(",")[0] for r in caplog.records] == [
        f"retrying after ServerUnavailableError (attempt {n} of 4" for n in (2, 3, 4)]
    assert not RetryPolicy(0).should_retry(ServerUnavailableError("x"))
    assert not policy.should_retry(InvalidRequestError("x"))
