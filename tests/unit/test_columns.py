"""Every output column is declared once: the documentation is generated from the declarations
and writers refuse frames that do not match them."""

from pathlib import Path

import pandas as pd
import pytest

from intraneuron.analysis.columns import TABLES, conform, markdown

ROOT = Path(__file__).resolve().parents[2]


def test_docs_tables_is_generated_from_the_declarations():
    assert (ROOT / "docs/tables.md").read_text() == markdown() + "\n", (
        "regenerate: python -m intraneuron.analysis.columns > docs/tables.md")


def test_every_column_is_documented_once():
    for name, columns in TABLES.items():
        names = [c.name for c in columns]
        assert len(names) == len(set(names)), name
        assert all(c.meaning for c in columns), name


def test_conform_refuses_missing_and_undeclared_columns():
    frame = pd.DataFrame({c.name: [] for c in TABLES["contrasts"]})
    assert list(conform(frame, "contrasts").columns) == list(frame.columns)
    with pytest.raises(ValueError, match=r"missing columns \['hi'\]"):
        conform(frame.drop(columns="hi"), "contrasts")
    with pytest.raises(ValueError, match=r"undeclared columns \['extra'\]"):
        conform(frame.assign(extra=[]), "contrasts")
