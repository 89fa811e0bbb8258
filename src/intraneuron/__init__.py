"""intraneuron: intra-neuronal attention in language models (Pichat et al., 2025, arXiv 2503.12992)."""

__version__ = "0.1.0"
