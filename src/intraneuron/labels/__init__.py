"""Prompt-based categories: an instruct model names each neuron's clusters and segments
(`stage`), from versioned prompts (`prompts.yaml`), through a local or an OpenAI-compatible
backend (`backends`), with every answer cached (`cache`)."""

from .backends import LabelError, LocalBackend, OpenAIBackend, make_backend, parse_label
from .cache import AnswerCache, cached_answers
from .prompts import Prompts, default_prompts, load_prompts
from .stage import distinct_layers, distinctness, label_model, token_sets

__all__ = ["AnswerCache", "LabelError", "LocalBackend", "OpenAIBackend", "Prompts",
           "cached_answers", "default_prompts", "distinct_layers", "distinctness",
           "label_model", "load_prompts", "make_backend", "parse_label", "token_sets"]
