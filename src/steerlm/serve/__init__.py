"""A local Triton server (PyTriton) with NeMo deploy's signature, for tests, demos and real models.

* ``steerlm serve`` / `steerlm.serve.server.serve` runs it (see docs/local-server.md);
* `Backend` / `SamplingRequest` are the contract for the model behind a signature;
* `ScriptedBackend` is the deterministic test model steered by ``[[directives]]`` in the prompt;
* `steerlm.serve.testing.LocalServer` starts one in a subprocess for tests;
* `registry` holds signatures, backends and presets by name.

Importing this package does not import pytriton; starting a server does.
"""

from steerlm.serve.backend import Backend, SamplingRequest, ServerFault
from steerlm.serve.registry import (
    PRESETS,
    ModelSpec,
    register_backend,
    register_model,
    register_signature,
)
from steerlm.serve.scripted import ScriptedBackend

__all__ = [
    "PRESETS",
    "Backend",
    "ModelSpec",
    "SamplingRequest",
    "ScriptedBackend",
    "ServerFault",
    "register_backend",
    "register_model",
    "register_signature",
]
