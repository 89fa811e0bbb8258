"""The clustering diagnostics (`intraneuron.analysis.diagnostics`) as an HTML fragment."""

from __future__ import annotations

import pandas as pd

from ..analysis.diagnostics import PILE_RULE, SLIVER_MAX
from .render import render


def diagnostics_html(frame: pd.DataFrame) -> str:
    """The fragment for a model's page: a warning line per flagged layer, then the table."""
    return render("clustering_diagnostics.html", diagnostics=frame.to_dict("records"),
                  rule=PILE_RULE, sliver_max=SLIVER_MAX)
