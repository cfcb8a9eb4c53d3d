"""Hand-written floors for `benchmarks/adapters.py`: what a careful user writes over raw tritonclient.

`FloorChat` (a LangChain `BaseChatModel`) and `FloorLLM` (a LlamaIndex `CustomLLM`) are the least an
integration does; `Raw` holds their tritonclient calls, also used bare (batch, throughput floors). Each
floor renders the Llama2-70B-SteerLM-Chat template with f-strings (the label line and system
text written out once), neutralises ``<extra_id_`` with `str.replace` (no Unicode look-alikes), builds
the same five tensors our client sends (the parameter tensors once, the prompt tensor per call), calls
tritonclient and cuts the answer at ``<extra_id_1>``. They send byte-identical prompts to ours: the
benchmark asserts it before measuring.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aiogrpc
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

MODEL = "Llama2-70B-SteerLM-Chat"
STREAM_MODEL = "Llama2-70B-SteerLM-Chat-streaming"
MAX_TOKENS = 4
END = "<extra_id_1>"
SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions.")
LABELS = ("quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4,complexity:4,"
          "verbosity:4")
HEADER = f"<extra_id_0>System\n{SYSTEM}\n"
GENERATION = f"<extra_id_1>Assistant\n<extra_id_2>{LABELS}\n"
Turn = tuple[str, str]  # (role, text): "user" or "assistant"


def _safe(text: str) -> str:
    return text.replace("<extra_id_", "\u2039extra_id_")


def render(turns: Sequence[Turn]) -> str:
    """The prompt of alternating user/assistant turns ending with a user turn (no system message)."""
    parts = [HEADER]
    for role, text in turns:
        if role == "user":
            parts.append(f"<extra_id_1>User\n{_safe(text)}\n")
        else:
            parts.append(f"<extra_id_1>Assistant\n<extra_id_2>{LABELS}\n{_safe(text)}\n")
    parts.append(GENERATION)
    return "".join(parts)


def _fixed(rows: int, module: Any = grpcclient) -> list[Any]:
    arrays = {
        "max_output_len": np.full((rows, 1), MAX_TOKENS, dtype=np.int64),
        "stop_words_list": np.full((rows, 1), END.encode(), dtype=np.object_),
        "output_generation_logits": np.zeros((rows, 1), dtype=np.bool_),
        "output_context_logits": np.zeros((rows, 1), dtype=np.bool_),
    }
    tensors = []
    for name, array in arrays.items():
        tensor = module.InferInput(name, [rows, 1], {"O": "BYTES", "i": "INT64", "b": "BOOL"}[array.dtype.kind])
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


def _prompt_tensor(prompts: Sequence[str]) -> Any:
    array = np.array([[p.encode()] for p in prompts], dtype=np.object_)
    tensor = grpcclient.InferInput("prompts", list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


def _cut(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    end = text.find(END)
    if end == -1:
        return text
    text = text[:end]
    return text[:-1] if text.endswith("\n") else text


class Raw:
    """Raw tritonclient calls over one server (gRPC): rendered turns in, cut answers out."""

    def __init__(self, address: str) -> None:
        self.client = grpcclient.InferenceServerClient(address)
        self.aio: aiogrpc.InferenceServerClient | None = None
        self.address = address
        self.outputs = [grpcclient.InferRequestedOutput("outputs")]
        self._fixed: dict[int, list[Any]] = {}

    def fixed(self, rows: int) -> list[Any]:
        if rows not in self._fixed:
            self._fixed[rows] = _fixed(rows)
        return self._fixed[rows]

    def invoke(self, turns: Sequence[Turn]) -> str:
        prompt = render(turns)
        result = self.client.infer(MODEL, [_prompt_tensor([prompt]), *self.fixed(1)], outputs=self.outputs)
        return _cut(result.as_numpy("outputs")[0, 0])

    def batch(self, conversations: Sequence[Sequence[Turn]]) -> list[str]:
        prompts = [render(t) for t in conversations]
        result = self.client.infer(MODEL, [_prompt_tensor(prompts), *self.fixed(len(prompts))],
                                   outputs=self.outputs)
        return [_cut(row[0]) for row in result.as_numpy("outputs")]

    async def ainvoke(self, turns: Sequence[Turn]) -> str:
        if self.aio is None:
            self.aio = aiogrpc.InferenceServerClient(self.address)
        prompt = render(turns)
        result = await self.aio.infer(MODEL, [_prompt_tensor([prompt]), *self.fixed(1)], outputs=self.outputs)
        return _cut(result.as_numpy("outputs")[0, 0])

    def stream(self, turns: Sequence[Turn]) -> Iterator[str]:
        """Deltas of one streamed answer (cumulative responses diffed; stops at the end marker)."""
        responses: queue.Queue[Any] = queue.Queue()
        self.client.start_stream(callback=lambda result, error: responses.put((result, error)))
        try:
            self.client.async_stream_infer(STREAM_MODEL, [_prompt_tensor([render(turns)]), *self.fixed(1)],
                                           outputs=self.outputs, enable_empty_final_response=True)
            seen = ""
            while True:
                result, error = responses.get(timeout=30)
                if error is not None:
                    raise error
                response = result.get_response()
                if "outputs" in {o.name for o in response.outputs}:
                    text = _cut(result.as_numpy("outputs")[0, 0])
                    if len(text) > len(seen):
                        yield text[len(seen):]
                        seen = text
                if response.parameters["triton_final_response"].bool_param:
                    return
        finally:
            self.client.stop_stream(cancel_requests=True)

    async def close_aio(self) -> None:
        if self.aio is not None:
            await self.aio.close()
            self.aio = None

    def close(self) -> None:
        self.client.close()


def _turns(messages: Sequence[BaseMessage]) -> list[Turn]:
    return [("assistant" if isinstance(m, AIMessage) else "user", str(m.content)) for m in messages]


class FloorChat(BaseChatModel):
    """The least a LangChain chat model over raw tritonclient does: render, infer, wrap."""

    raw: Any

    @property
    def _llm_type(self) -> str:
        return "floor"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.raw.invoke(_turns(messages))))])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        text = await self.raw.ainvoke(_turns(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: Any = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for delta in self.raw.stream(_turns(messages)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
            if run_manager is not None:
                run_manager.on_llm_new_token(delta, chunk=chunk)
            yield chunk


class FloorLLM(CustomLLM):
    """The least a LlamaIndex LLM over raw tritonclient does (chat and complete written directly)."""

    raw: Any

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=4096, num_output=MAX_TOKENS, is_chat_model=True, model_name=MODEL)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        turns: list[Turn] = [("assistant" if m.role == MessageRole.ASSISTANT else "user", m.content or "")
                             for m in messages]
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=self.raw.invoke(turns)))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self.raw.invoke([("user", prompt)]))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        raise NotImplementedError


def stream_chunks(events: Iterator[Any]) -> Iterator[ChatGenerationChunk]:
    """Floor of the 10 k-chunk stream: delta responses (TensorRT-LLM style) -> LangChain chunks.

    Watches the tail for the end marker across chunk boundaries, as a hand-written loop must.
    """
    tail = ""
    for event in events:
        if "text_output" not in event.outputs:
            return
        delta = event.outputs["text_output"][0, 0].decode("utf-8", "replace")
        window = tail + delta
        if END in window:
            return
        tail = window[-len(END):]
        yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
