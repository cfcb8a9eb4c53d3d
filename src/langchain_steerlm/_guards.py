"""`InputGuards`: a mixin (first base of both LangChain models) for what LangChain itself does with inputs.

* ``bind(api_key=..., headers=...)``: LangChain keeps bound keyword arguments in the `RunnableBinding`,
  whose repr shows them and which passes them on to callback handlers; the secrets are wrapped first
  (`steerlm.secrets.hide_secrets`: a `SecretStr`, redacted headers) — the client unwraps them.
* Input conversion: LangChain's own conversion of the input to messages raises TypeError / KeyError /
  ValueError for shapes it cannot read (a dict message whose ``tool_calls`` lack an ``id``, an
  unsupported type); those become a `steerlm.PromptError` saying what to pass.
"""

from __future__ import annotations

from typing import Any

from steerlm.errors import PromptError, SteerLMError
from steerlm.secrets import hide_secrets

__all__ = ["InputGuards"]


class InputGuards:
    """See the module docstring; `super()` is the LangChain model class."""

    def bind(self, **kwargs: Any) -> Any:
        return super().bind(**hide_secrets(kwargs))  # type: ignore[misc]

    def _convert_input(self, model_input: Any) -> Any:
        try:
            return super()._convert_input(model_input)  # type: ignore[misc]
        except SteerLMError:
            raise
        except (TypeError, KeyError, ValueError, NotImplementedError) as exc:
            raise PromptError(
                f"cannot read the input as a conversation ({type(exc).__name__}: {exc}); pass a string, LangChain "
                "messages, (role, text) tuples or {'role': ..., 'content': ...} dicts (tool_calls in a dict need "
                "'name', 'args' and 'id')"
            ) from exc
