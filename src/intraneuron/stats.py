"""Renamed to `intraneuron.running_stats`. This alias only serves `h5io.read_stats` until its
import names the new module; delete it then."""

from .running_stats import CompactStats

__all__ = ["CompactStats"]
