"""A local Triton server (PyTriton) with NeMo deploy's signature and the other served signatures.

* ``steerlm serve`` / `steerlm.serve.server.serve` runs it (see docs/local-server.md);
* `Backend` / `SamplingRequest` are the contract for the text model behind a signature (the Hugging
  Face backend, `steerlm.serve.hf`, is the one shipped here);
* `registry` holds signatures, backends and presets by name.

Test models (the scripted backend, fault injection, `LocalServer`) live in the separate
``steerlm_testing`` package, which registers them here; nothing in `steerlm` imports it.
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

__all__ = [
    "PRESETS",
    "Backend",
    "ModelSpec",
    "SamplingRequest",
    "ServerFault",
    "register_backend",
    "register_model",
    "register_signature",
]
