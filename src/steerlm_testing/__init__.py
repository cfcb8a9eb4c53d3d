"""The steerlm test kit: scripted models, fault injection, test doubles and `LocalServer`.

Kept apart from the product: ``steerlm`` never imports this package; the kit imports ``steerlm`` and
registers its scripted backends and presets into the product's server registry.

* `LocalServer` (`steerlm_testing.local_server`) starts a local Triton server in a subprocess;
* ``python -m steerlm_testing.serve`` is ``steerlm serve`` with the kit's presets (``test``, ``minimal``,
  ``reward``, ``ensemble``; `steerlm_testing.presets`);
* `ScriptedBackend` (`steerlm_testing.scripted`) is the deterministic test model steered by
  ``[[directives]]`` in the prompt (`steerlm_testing.directives`), including fault injection;
* `RestDouble` (`steerlm_testing.rest_double`) is a double of NeMo's legacy REST server;
* `OpenAIDouble` (`steerlm_testing.openai_double`) is a double of an OpenAI-compatible ``/v1`` server
  (vLLM's or NeMo Ray Serve's flavour), with auth, context-length and fault injection;
* `TransformersServe` (`steerlm_testing.transformers_serve`) runs Hugging Face ``transformers serve`` on
  a local checkpoint (CPU, offline, loopback) and always stops it;
* `ScriptedScorer` (`steerlm_testing.reward_scorer`) scores text for the reward-model signature.

Importing this package imports neither pytriton nor tritonclient.
"""

from steerlm_testing.local_server import LocalServer, ServerStartError

__all__ = ["LocalServer", "ServerStartError"]
