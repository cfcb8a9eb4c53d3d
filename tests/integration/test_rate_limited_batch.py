"""A rate limiter is consulted before a native batch request is sent: one permit per input, none twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.rate_limiters import BaseRateLimiter

from langchain_steerlm import ChatSteerLM
from steerlm_testing import LocalServer

MODEL = "Llama2-70B-SteerLM-Chat"


class RecordingLimiter(BaseRateLimiter):
    """Grants every permit and records how many requests the server had seen at that moment."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.seen: list[int] = []

    def acquire(self, *, blocking: bool = True) -> bool:
        self.seen.append(len(self.server.requests(MODEL)))
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        return self.acquire(blocking=blocking)


@pytest.mark.parametrize("async_api", [False, True])
def test_permits_are_taken_before_the_batch_request_is_sent(server: LocalServer, async_api: bool) -> None:
    limiter = RecordingLimiter(server)
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, max_retries=0, max_tokens=4, rate_limiter=limiter)
    inputs: list[Any] = ["one", "two", "three"]
    replies = asyncio.run(model.abatch(inputs)) if async_api else model.batch(inputs)
    assert len(replies) == 3 and all(r.content for r in replies)
    assert limiter.seen == [0, 0, 0]  # three permits, all before the one request reached the server
    assert len(server.requests(MODEL)) == 1
