"""LlamaIndex integration of steerlm: the `SteerLM` LLM and closed-QA templates for query engines."""

from llamaindex_steerlm.llms import SteerLM
from llamaindex_steerlm.prompts import CLOSED_QA_REFINE_TEMPLATE, CLOSED_QA_TEMPLATE, closed_qa_templates

__all__ = ["CLOSED_QA_REFINE_TEMPLATE", "CLOSED_QA_TEMPLATE", "SteerLM", "closed_qa_templates"]
