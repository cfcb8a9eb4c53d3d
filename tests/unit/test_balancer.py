"""The replica balancer with a fake clock: selection, health, re-probe, counters under concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter

import pytest

from steerlm.client.balancer import Balancer, health_after, marks_down
from steerlm.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    RequestTimeoutError,
    ServerOverloadedError,
    ServerUnavailableError,
)

DOWN = ServerUnavailableError("connection refused")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fail(balancer: Balancer, index: int, exc: BaseException = DOWN) -> None:
    with pytest.raises(type(exc)), balancer.lease(index):
        raise exc


def succeed(balancer: Balancer, index: int) -> None:
    with balancer.lease(index):
        pass


def test_one_replica_is_always_index_zero() -> None:
    balancer = Balancer(1)
    fail(balancer, 0)
    assert balancer.order() == (0,)


def test_idle_replicas_take_turns() -> None:
    balancer = Balancer(3)
    firsts = []
    for _ in range(6):
        order = balancer.order()
        assert sorted(order) == [0, 1, 2]
        firsts.append(order[0])
        succeed(balancer, order[0])
    assert firsts == [0, 1, 2, 0, 1, 2]


def test_least_outstanding_first_ties_round_robin() -> None:
    balancer = Balancer(3)
    with balancer.lease(0), balancer.lease(0), balancer.lease(1):
        assert balancer.order()[0] == 2
        assert balancer.state(0).outstanding == 2
        with balancer.lease(2):
            # 1 and 2 are tied at one request each; the cursor (at 0) reaches 1 before 2
            assert balancer.order()[:2] == (1, 2)
            assert balancer.order()[-1] == 0
    assert [balancer.state(i).outstanding for i in range(3)] == [0, 0, 0]


def test_spread_of_held_requests_is_even() -> None:
    balancer = Balancer(4)
    with contextlib.ExitStack() as held:
        for _ in range(64):
            held.enter_context(balancer.lease(balancer.order()[0]))
        assert [balancer.state(i).outstanding for i in range(4)] == [16, 16, 16, 16]


def test_down_replica_goes_last_until_its_backoff_passes_then_one_probe() -> None:
    clock = Clock()
    balancer = Balancer(3, first_backoff=1.0, max_backoff=8.0, clock=clock)
    fail(balancer, 1)
    state = balancer.state(1)
    assert not state.healthy and state.failures == 1 and state.probe_at == 101.0
    for _ in range(5):
        assert balancer.order()[-1] == 1
    clock.now = 101.0
    assert balancer.order()[0] == 1  # the probe
    assert balancer.order()[-1] == 1  # only one: the next probe is a backoff away
    fail(balancer, 1)  # the probe failed: backoff doubles
    assert balancer.state(1).probe_at == 103.0
    clock.now = 103.5
    assert balancer.order()[0] == 1
    succeed(balancer, 1)  # the probe worked: healthy again, in the rotation
    assert balancer.state(1).healthy and balancer.state(1).failures == 0
    assert Counter(balancer.order()[0] for _ in range(6)) == {0: 2, 1: 2, 2: 2}


def test_backoff_is_capped() -> None:
    clock = Clock()
    balancer = Balancer(2, first_backoff=1.0, max_backoff=4.0, clock=clock)
    for _ in range(6):
        clock.now = balancer.state(0).probe_at
        assert balancer.order()[0] == 0 or balancer.state(0).healthy
        fail(balancer, 0)
    assert balancer.state(0).probe_at - clock.now == 4.0


def test_all_down_are_still_tried_soonest_probe_first() -> None:
    clock = Clock()
    balancer = Balancer(3, first_backoff=1.0, clock=clock)
    fail(balancer, 2)
    clock.now += 0.1
    fail(balancer, 0)
    clock.now += 0.1
    fail(balancer, 1)
    assert balancer.order() == (2, 0, 1)


def test_failures_of_requests_sent_before_the_replica_went_down_count_once() -> None:
    clock = Clock()
    balancer = Balancer(2, first_backoff=1.0, clock=clock)
    with pytest.raises(ServerUnavailableError), contextlib.ExitStack() as held:
        for _ in range(8):
            held.enter_context(balancer.lease(0))
        raise DOWN  # every one of the 8 requests in flight fails
    state = balancer.state(0)
    assert state.failures == 1 and state.outstanding == 0 and state.probe_at == 101.0


def test_a_late_success_sent_before_the_failure_does_not_revive_it() -> None:
    balancer = Balancer(2)
    with balancer.lease(0):
        fail(balancer, 0)
    assert not balancer.state(0).healthy


@pytest.mark.parametrize(("exc", "health"), [
    (None, True),
    (ServerUnavailableError("refused"), False),
    (RequestTimeoutError("deadline"), None),
    (ServerOverloadedError("429"), True),
    (InvalidRequestError("400"), True),
    (ModelNotFoundError("unknown model"), False),
    (asyncio.CancelledError(), None),
    (KeyError("x"), None),
])
def test_health_after_outcomes(exc: BaseException | None, health: bool | None) -> None:
    assert health_after(exc) is health
    if exc is not None:
        assert marks_down(exc) is (health is False)


def test_a_timeout_or_cancellation_leaves_health_alone() -> None:
    clock = Clock()
    balancer = Balancer(2, clock=clock)
    fail(balancer, 0, RequestTimeoutError("deadline"))
    assert balancer.state(0).healthy
    fail(balancer, 1)
    clock.now = balancer.state(1).probe_at
    assert balancer.order()[0] == 1
    fail(balancer, 1, RequestTimeoutError("deadline"))
    assert not balancer.state(1).healthy and balancer.state(1).failures == 1


def test_server_side_error_proves_the_replica_reachable() -> None:
    clock = Clock()
    balancer = Balancer(2, clock=clock)
    fail(balancer, 0)
    clock.now = balancer.state(0).probe_at
    fail(balancer, 0, InvalidRequestError("bad input"))
    assert balancer.state(0).healthy


def test_counters_stay_exact_across_threads() -> None:
    balancer = Balancer(4)
    seen: Counter[int] = Counter()
    lock = threading.Lock()

    def work() -> None:
        for _ in range(500):
            index = balancer.order()[0]
            with balancer.lease(index), lock:
                seen[index] += 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(seen.values()) == 4000
    assert all(balancer.state(i).outstanding == 0 for i in range(4))
    assert sum(balancer.state(i).served for i in range(4)) == 4000
    assert min(seen.values()) > 0


def test_async_tasks_share_one_balancer_evenly() -> None:
    balancer = Balancer(4)
    peak = [0, 0, 0, 0]

    async def one() -> int:
        index = balancer.order()[0]
        with balancer.lease(index):
            peak[index] = max(peak[index], balancer.state(index).outstanding)
            await asyncio.sleep(0.01)
        return index

    async def main() -> list[int]:
        return await asyncio.gather(*(one() for _ in range(64)))

    picked = Counter(asyncio.run(main()))
    assert picked == {0: 16, 1: 16, 2: 16, 3: 16}
    assert peak == [16, 16, 16, 16]


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one replica"):
        Balancer(0)


def test_health_changes_are_logged_with_the_replica_label(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    balancer = Balancer(2, labels=["grpc://a:1", "grpc://b:2"], first_backoff=1.0, clock=clock)
    caplog.set_level("INFO", logger="steerlm.balancer")
    fail(balancer, 1)
    clock.now = balancer.state(1).probe_at
    balancer.order()
    fail(balancer, 1)
    clock.now = balancer.state(1).probe_at
    balancer.order()
    succeed(balancer, 1)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "replica grpc://b:2 is down, skipped until a re-probe in 1.0 s: "
                    "ServerUnavailableError: connection refused"),
        ("INFO", "replica grpc://b:2 is still down; next probe in 2.0 s"),
        ("INFO", "replica grpc://b:2 answers again; back in the rotation"),
    ]


def test_one_replica_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    balancer = Balancer(1)
    fail(balancer, 0)
    assert not caplog.records


def test_a_ready_probe_brings_a_replica_back_without_counting_a_request() -> None:
    balancer = Balancer(2)
    fail(balancer, 0)
    balancer.ready(0)
    state = balancer.state(0)
    assert state.healthy and state.failures == 0 and state.outstanding == 0 and state.served == 0
    balancer.ready(1)
    assert balancer.state(1).healthy
