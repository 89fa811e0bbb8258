"""Clustering diagnostics: a layer whose k piles up at a bound of the rule is flagged, one whose
k varies is not, and the rule's boundary (more than half) is crossed exactly."""

import numpy as np
import pandas as pd
import pytest

from intraneuron.analysis import resolve_params
from intraneuron.analysis.columns import TABLES
from intraneuron.analysis.diagnostics import PILE_SHARE, clustering_diagnostics
from intraneuron.report.clustering_diagnostics import diagnostics_html


def tables(ks_by_layer: dict[int, list[int]], sliver: int = 1) -> tuple[pd.DataFrame, ...]:
    """Neurons with the given k per layer; each neuron's clusters: one of `sliver` tokens when
    k = 2, else equal sizes; plus control rows that must be ignored."""
    neurons, clusters = [], []
    for layer, ks in ks_by_layer.items():
        for neuron, k in enumerate(ks):
            for kind in ("neuron", "random_direction"):
                neurons.append({"layer": layer, "neuron": neuron, "kind": kind,
                                "n_clusters": k if kind == "neuron" else 10})
                sizes = [100 - sliver, sliver] if k == 2 else [100 // k] * k
                clusters += [{"layer": layer, "neuron": neuron, "kind": kind, "cluster": c,
                              "size": s if kind == "neuron" else 1}
                             for c, s in enumerate(sizes)]
    return pd.DataFrame(neurons), pd.DataFrame(clusters)


def test_piled_layer_is_flagged_and_a_varied_one_is_not():
    rng = np.random.default_rng(0)
    ks = {0: [2] * 80 + [3] * 20, 1: list(rng.integers(2, 11, 100)), 2: [10] * 60 + [9] * 40}
    frame = clustering_diagnostics(*tables(ks), resolve_params(None))
    assert list(frame.columns) == [c.name for c in TABLES["clustering_diagnostics"]]
    by = frame.set_index("layer")
    assert by.loc[0, "piled_at"] == "lowest" and by.loc[0, "share_at_lowest"] == 0.8
    assert "k = 2" in by.loc[0, "warning"] and "80%" in by.loc[0, "warning"]
    assert by.loc[0, "share_sliver"] == 0.8 and by.loc[0, "smallest_median"] == 1
    assert by.loc[1, "piled_at"] == "" and by.loc[1, "warning"] == ""
    assert by.loc[2, "piled_at"] == "highest" and by.loc[2, "share_at_highest"] == 0.6
    assert by.loc[0, "k_distribution"] == "2: 80.0% · 3: 20.0%"
    assert (by["n_neurons"] == 100).all()  # control rows left out


def test_both_bounds_together_are_flagged():
    """minilm in bb25b9d's demo: 32% at k = 2 and 40% at k = 10, neither over half alone."""
    ks = {0: [2] * 32 + [10] * 40 + [6] * 28, 1: [2] * 25 + [10] * 25 + [6] * 50}
    frame = clustering_diagnostics(*tables(ks), resolve_params(None))
    assert frame["piled_at"].tolist() == ["both", ""]
    assert "k = 2 or 10" in frame["warning"].iloc[0]


def test_the_rule_needs_more_than_the_share():
    at_share = int(PILE_SHARE * 100)
    frame = clustering_diagnostics(*tables({0: [2] * at_share + [5] * (100 - at_share),
                                            1: [2] * (at_share + 1) + [5] * (99 - at_share),
                                            2: [2] * 25 + [10] * 25 + [5] * 50,
                                            3: [2] * 25 + [10] * 26 + [5] * 49}),
                                   resolve_params(None))
    assert frame["piled_at"].tolist() == ["", "lowest", "", "both"]


@pytest.mark.parametrize("setting", [{"clustering": "hdbscan"}, {"n_clusters": 2},
                                     {"min_clusters": 2, "max_clusters": 2}])
def test_rules_without_a_chosen_bound_are_not_flagged(setting):
    frame = clustering_diagnostics(*tables({0: [2] * 100}), resolve_params(setting))
    assert frame["warning"].tolist() == [""] and frame["k_lowest"].isna().all()


def test_fragment_shows_the_warning_and_the_table():
    frame = clustering_diagnostics(*tables({0: [2] * 90 + [4] * 10, 1: [3, 4, 5, 6] * 25}),
                                   resolve_params(None))
    html = diagnostics_html(frame)
    assert html.count("clustering-warning") == 1 and "layer 0: k = 2" in html
    assert 'id="clustering-diagnostics"' in html and "90.0%" in html
    assert "No clustered neurons" in diagnostics_html(frame.iloc[:0])
