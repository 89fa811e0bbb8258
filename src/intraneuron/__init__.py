"""intraneuron: intra-neuronal attention in language models (Pichat et al., 2025, arXiv 2503.12992)."""

# The one place the version is set: pyproject.toml reads it from here (the workflow's jobs import
# the package from src/ without installing it, so installed metadata could name another copy).
# Every file the package writes carries it (h5io.written_by); CHANGELOG.md says what changed.
__version__ = "0.2.0.dev0"
