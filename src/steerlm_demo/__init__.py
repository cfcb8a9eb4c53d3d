"""The end-to-end demo (``python -m steerlm_demo``), kept outside the framework-neutral core.

It uses both adapters, so it lives in its own package: ``steerlm`` itself never imports LangChain or
LlamaIndex.
"""

from steerlm_demo.demo import Served, main, run

__all__ = ["Served", "main", "run"]
