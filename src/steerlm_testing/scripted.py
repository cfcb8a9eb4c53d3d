"""The scripted test model: a deterministic, pure-Python `Backend` steered by prompt directives.

Behaviour (see docs/local-server.md for the full table):

* default: pseudo-random words from a fixed vocabulary, seeded by a hash of the prompt; one token is
  one word plus a space; exactly ``max_tokens`` tokens unless a stop word ends generation;
* ``[[say=TEXT]]`` emits TEXT (see `directives.tokenize`), ``[[echo]]`` emits the prompt and the decoded
  parameters as one JSON token, ``[[error=MSG]]`` fails in-band, ``[[raise=MSG]]`` makes Triton fail,
  ``[[delay=S]]`` waits S seconds per token, ``[[sleep=S]]`` waits S seconds before answering,
  ``[[stream_fail_after=N]]`` kills the server after N streamed tokens, ``[[stream_raise_after=N]]``
  makes Triton fail the stream after N streamed tokens;
* a request with a guided-decoding JSON schema (``extras["json_schema"]``) gets a JSON instance of it
  (`scripted_tools.schema_reply`), as one token, whatever ``[[say=...]]`` asks for (only ``[[echo]]`` and the
  failure directives come first);
* prompts offering tools get the generic reply of `scripted_tools.tool_reply`;
* a prompt asking for JSON by the prompted protocol (a ``<json_schema>`` block) gets a JSON instance of it;
* a prompt longer than ``CONTEXT_WINDOW`` tokens (whitespace-separated words) fails like TensorRT-LLM:
  ``Prompt length (N) exceeds maximum input length (4096)`` (NeMo signatures answer it in-band);
* generation stops after the token that completes a stop word (kept in the text, like TensorRT-LLM) or
  an ``<extra_id_1>`` marker.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence

from steerlm.serve.backend import SamplingRequest, ServerFault
from steerlm_testing.directives import Directives, parse_directives, tokenize
from steerlm_testing.faults import kill_server_hard
from steerlm_testing.scripted_tools import prompted_schema, schema_reply, tool_reply

__all__ = ["CONTEXT_WINDOW", "END_OF_TURN", "MAX_TOKENS_CAP", "VOCABULARY", "ScriptedBackend", "ScriptedError"]

END_OF_TURN = "<extra_id_1>"
MAX_TOKENS_CAP = 4096
CONTEXT_WINDOW = 4096  # the declared input limit, in whitespace-separated words
VOCABULARY = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
    "yankee", "zulu", "amber", "basil", "cedar", "dune", "ember", "fjord",
)


class ScriptedError(RuntimeError):
    """An in-band failure asked for by ``[[error=MSG]]``; its message is MSG."""


def _default_tokens(prompt: str, count: int) -> list[str]:
    seed = int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "big")
    rng = random.Random(seed)
    return [rng.choice(VOCABULARY) + " " for _ in range(count)]


def _echo(prompt: str, params: SamplingRequest) -> str:
    payload = {"prompt": prompt, "params": params.as_dict()}
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str).replace("<", "\\u003c")


def cumulative_steps(tokens: Sequence[str], params: SamplingRequest) -> list[str]:
    """The cumulative text after each emitted token, honouring max tokens and stop words."""
    steps: list[str] = []
    text = ""
    stops = (*params.stop_words, END_OF_TURN)
    for token in tokens[: min(params.max_tokens, MAX_TOKENS_CAP)]:
        text += token
        steps.append(text)
        if any(stop and stop in text for stop in stops):
            break
    return steps


class ScriptedBackend:
    """Deterministic text generation for tests. `sleep` and `on_fatal` are injectable for unit tests."""

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        on_fatal: Callable[[], None] = kill_server_hard,
    ) -> None:
        self._sleep = sleep
        self._on_fatal = on_fatal

    def plan(self, prompt: str, params: SamplingRequest) -> tuple[Directives, list[str]]:
        """The directives of `prompt` and every token the model would emit (before stops/limits)."""
        if params.max_tokens < 1:
            raise ValueError(f"max output length must be at least 1, got {params.max_tokens}")
        length = len(prompt.split())
        if length > CONTEXT_WINDOW:
            raise ScriptedError(f"Prompt length ({length}) exceeds maximum input length ({CONTEXT_WINDOW}).")
        directives = parse_directives(prompt)
        if directives.raise_ is not None:
            raise ServerFault(directives.raise_)
        if directives.error is not None:
            raise ScriptedError(directives.error)
        if directives.echo:
            return directives, [_echo(prompt, params)]
        schema = params.extras.get("json_schema")
        if isinstance(schema, dict):  # guided decoding constrains whatever the model would say
            return directives, [schema_reply(prompt, schema)]
        if directives.say is not None:
            return directives, tokenize(directives.say)
        reply = tool_reply(prompt)
        if reply is not None:
            text, is_json = reply
            return directives, [text] if is_json else tokenize(text)
        asked = prompted_schema(prompt)
        if asked is not None:  # the prompted JSON protocol: follow it, as a model that follows instructions
            return directives, [schema_reply(prompt, asked)]
        return directives, _default_tokens(prompt, min(params.max_tokens, MAX_TOKENS_CAP))

    def _prepare(
        self, prompts: Sequence[str], params: SamplingRequest
    ) -> tuple[list[Directives], list[list[str]]]:
        plans = [self.plan(prompt, params) for prompt in prompts]
        directives = [d for d, _ in plans]
        steps = [cumulative_steps(tokens, params) for _, tokens in plans]
        wait = max((d.sleep for d in directives), default=0.0)
        if wait:
            self._sleep(wait)
        return directives, steps

    def generate(self, prompts: Sequence[str], params: SamplingRequest) -> list[str]:
        directives, steps = self._prepare(prompts, params)
        delay = max((d.delay * len(s) for d, s in zip(directives, steps, strict=True)), default=0.0)
        if delay:
            self._sleep(delay)
        return [s[-1] if s else "" for s in steps]

    def stream(self, prompts: Sequence[str], params: SamplingRequest) -> Iterator[list[str]]:
        directives, steps = self._prepare(prompts, params)
        delay = max((d.delay for d in directives), default=0.0)
        fail_points = [d.stream_fail_after for d in directives if d.stream_fail_after is not None]
        fail_after = min(fail_points) if fail_points else None
        raise_points = [d.stream_raise_after for d in directives if d.stream_raise_after is not None]
        raise_after = min(raise_points) if raise_points else None
        for index in range(max((len(s) for s in steps), default=0)):
            if fail_after is not None and index >= fail_after:
                self._on_fatal()
                return
            if raise_after is not None and index >= raise_after:
                raise ServerFault(f"stream failed on purpose after {raise_after} tokens")
            if delay:
                self._sleep(delay)
            yield [s[min(index, len(s) - 1)] if s else "" for s in steps]
