"""Token usage as the server reports it (framework-neutral; the adapters map it to their own types)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenUsage"]


@dataclass(frozen=True)
class TokenUsage:
    """Input (prompt) and output (generated) token counts of one completion, as the server counted them.

    Output tokens are those the server generated, including any the client cut off after a stop string
    (servers that take no stop words generate past it).

    Example:
        .. code-block:: python

            done = client.generate(prompt)
            if done.usage is not None:
                print(done.usage.input_tokens, done.usage.output_tokens, done.usage.total_tokens)
    """

    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
