"""OpenAI-compatible servers: ``POST <base>/completions`` with the byte-exact rendered prompt.

Selected by the URL forms ``openai+http://HOST:PORT/v1`` and ``openai+https://HOST:PORT/v1`` (the path
is the API base); ``model`` is the served model id (what ``GET <base>/models`` lists), ``profile`` the
SteerLM template. It reaches vLLM, trtllm-serve, self-hosted NIM, Triton's OpenAI frontend, NeMo's Ray
Serve deployables and ``transformers serve``. The completions endpoint — not chat completions — is the
right one: a chat endpoint would apply the server's own template, without SteerLM's label line.

It plugs into the client as one more codec × connection pair, so retries, failover, stop clean-up and
stream assembly are the client's:

* `OpenAICodec` (`codec`): the synthesised signature, ``prompt`` → ``text`` plus ``finish_reason`` and
  the server's token counts;
* `wire`: request bodies, answers, SSE chunks, error messages, server-side stop restoration (pure);
* `common.Target`: routes (``/completions`` or NeMo Ray's ``/completions/``), list support, TLS;
* `OpenAIConnection` (`sync`, stdlib ``http.client``) and `AsyncOpenAIConnection` (`aio`, aiohttp).
"""

from __future__ import annotations

from steerlm.transport.openai.aio import AsyncOpenAIConnection
from steerlm.transport.openai.codec import OPENAI_CONFIG, OpenAICodec
from steerlm.transport.openai.sync import OpenAIConnection

__all__ = ["OPENAI_CONFIG", "AsyncOpenAIConnection", "OpenAICodec", "OpenAIConnection"]
