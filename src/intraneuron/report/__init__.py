"""The self-contained HTML report (figures, claims, methods, neuron browser, provenance)."""

from .build import build_report

__all__ = ["build_report"]
