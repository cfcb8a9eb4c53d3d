"""`SteerLMClient` / `AsyncSteerLMClient`: rendered prompts in, cleaned completions out.

Both compose the same pure `ClientCore` (settings, codec, planning, stop handling; in
`steerlm.transport.core`) with connections from `steerlm.transport`. The I/O loops are the only
sync/async twins, a few lines each: the blocking client in `steerlm.sync_client`, the asyncio one in
`steerlm.async_client`; this module is where both (and their result types) are imported from.
Construction never touches the network: the model config is read once, on first use, after a
bounded wait for the model to be ready. Retries (`steerlm.retry`) wrap each request in those loops
and nowhere else; a list of URLs fails over to the next one on a retryable error.
"""

from __future__ import annotations

from steerlm.async_client import AsyncSteerLMClient
from steerlm.sync_client import SteerLMClient
from steerlm.transport.core import Completion, StreamChunk
from steerlm.transport.session import DEFAULT_URL

__all__ = ["DEFAULT_URL", "AsyncSteerLMClient", "Completion", "SteerLMClient", "StreamChunk"]
