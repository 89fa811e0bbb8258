"""Table contract, determinism, shard-split invariance, params and the layer/claim tables."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intraneuron.analysis import (
    DEFAULT_PARAMS,
    add_layer_fdr,
    analyze_shard,
    evaluate_claims,
    resolve_params,
    summarize_layers,
)
from intraneuron.analysis.inference import wilcoxon_p
from intraneuron.analysis.synthetic import synthetic_shard

ROOT = Path(__file__).resolve().parents[2]


def shard_inputs(n=10, seed=0, **kw):
    shard = synthetic_shard(n, planted_top=kw.pop("planted_top", 10), seed=seed, **kw)
    shard.pop("category")
    return shard


def subset(shard, rows):
    out = dict(shard)
    for key in ("neurons", "token_ids", "mean_act", "max_act", "counts"):
        out[key] = shard[key][rows]
    out["tokens"] = [shard["tokens"][i] for i in rows]
    return out


@pytest.fixture(scope="module")
def shard():
    return shard_inputs()


@pytest.fixture(scope="module")
def tables(shard):
    return analyze_shard(3, params={"permutations": 200}, **shard)


def test_tables_follow_the_contract(tables, shard):
    tok = tables["tokens"]
    required = ["layer", "neuron", "rank", "token_id", "token", "mean_activation",
                "max_activation", "count", "cluster", "segment", "fine_segment"]  # fmt: skip
    assert list(tok.columns[: len(required)]) == required
    assert len(tok) == 10 * 100
    assert tok["layer"].dtype == np.int16 and tok["neuron"].dtype == np.int32
    assert tok["token_id"].dtype == np.int32 and tok["count"].dtype == np.int64
    assert tok["mean_activation"].dtype == np.float32
    for col in ("cluster", "segment", "fine_segment", "rank"):
        assert tok[col].dtype == np.int16
    np.testing.assert_array_equal(tok["token_id"], shard["token_ids"].ravel())
    assert tok["token"].iloc[101] == shard["tokens"][1][1]
    first = tok[tok["neuron"] == 0]
    assert list(first["segment"]) == list(np.repeat(np.arange(4), 25))
    assert list(first["fine_segment"]) == list(np.repeat(np.arange(10), 10))

    neu = tables["neurons"]
    assert len(neu) == 10 and neu["layer"].eq(3).all() and neu["neuron"].dtype == np.int32
    assert neu["neuron"].is_unique

    seg = tables["segments"]
    for col in ("layer", "neuron", "scheme", "segment", "size", "act_min", "act_max",
                "homogeneity", "null_mean", "null_sd", "z", "p"):  # fmt: skip
        assert col in seg
    assert len(seg) == 10 * (4 + 10)
    assert set(seg["scheme"]) == {"coarse", "fine"}
    assert seg.groupby(["neuron", "scheme"])["size"].sum().eq(100).all()
    assert (seg["act_max"] >= seg["act_min"]).all()
    assert seg["p"].between(1 / 201, 1).all()

    clu = tables["clusters"]
    for col in ("layer", "neuron", "cluster", "size", "mean_activation", "homogeneity", "name"):
        assert col in clu
    assert clu.groupby("neuron")["size"].sum().eq(100).all()
    assert (clu.groupby("neuron").size().to_numpy() == neu["n_clusters"].to_numpy()).all()
    # cluster 0 has the highest mean activation
    order = clu.groupby("neuron")["mean_activation"].apply(lambda s: s.is_monotonic_decreasing)
    assert order.all()
    counts = tok.groupby(["neuron", "cluster"]).size()
    np.testing.assert_array_equal(counts.to_numpy(), clu["size"].to_numpy())
    assert clu["name"].str.count(" · ").le(2).all()
    assert clu.loc[clu["size"] >= 3, "name"].str.count(" · ").eq(2).all()


def test_same_seed_same_tables_and_seed_matters(shard, tables):
    again = analyze_shard(3, params={"permutations": 200}, **shard)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, again[name])
    other = analyze_shard(3, params={"permutations": 200, "seed": 1}, **shard)
    assert not np.allclose(other["segments"]["null_mean"], tables["segments"]["null_mean"])
    pd.testing.assert_series_equal(
        other["segments"]["homogeneity"], tables["segments"]["homogeneity"]
    )


def test_shard_split_does_not_change_rows(shard, tables):
    parts = [
        analyze_shard(3, params={"permutations": 200}, **subset(shard, rows))
        for rows in (np.arange(5), np.arange(5, 10))
    ]
    for name, frame in tables.items():
        joined = pd.concat([p[name] for p in parts], ignore_index=True)
        pd.testing.assert_frame_equal(frame, joined)
    reverse = analyze_shard(3, params={"permutations": 200}, **subset(shard, np.arange(10)[::-1]))
    back = reverse["neurons"].sort_values("neuron").reset_index(drop=True)
    pd.testing.assert_frame_equal(tables["neurons"], back)


def test_other_linkages_and_cluster_rules_run(shard):
    small = subset(shard, np.arange(2))
    for params in (
        {"linkage": "ward"},
        {"linkage": "complete", "n_clusters": 3},
        {"linkage": "single", "cluster_selection": "distance_threshold",
         "distance_threshold": 0.5},
        {"n_segments": 3, "fine_segments": 7, "cluster_name_tokens": 1},
    ):  # fmt: skip
        out = analyze_shard(0, params={"permutations": 20, **params}, **small)
        neu = out["neurons"]
        assert neu["n_clusters"].between(2, 10).all()
        if params.get("n_clusters") == 3:
            assert (neu["n_clusters"] == 3).all()
        if "n_segments" in params:
            assert len(out["segments"]) == 2 * (3 + 7)
            assert not out["clusters"]["name"].str.contains("·").any()


def test_small_k_gives_nan_for_single_token_segments():
    small = shard_inputs(n=2, k=12, planted_top=0)
    out = analyze_shard(0, params={"permutations": 20, "fine_segments": 10}, **small)
    fine = out["segments"][out["segments"]["scheme"] == "fine"]
    assert fine.loc[fine["size"] == 1, "homogeneity"].isna().all()
    assert out["neurons"]["fine_trend"].isna().all()
    with pytest.raises(ValueError, match="at least"):
        analyze_shard(0, params={"fine_segments": 20}, **small)


def test_empty_shard_gives_empty_tables(shard):
    empty = subset(shard, np.arange(0))
    out = analyze_shard(0, **empty)
    assert all(len(frame) == 0 for frame in out.values())
    assert "homogeneity" in out["segments"] and "kw_p" in out["neurons"]
    layers = summarize_layers(out["neurons"], out["segments"], out["clusters"])
    assert len(layers) == 0 and len(evaluate_claims(layers)) == 0


def test_input_contract_violations_raise(shard):
    bad = subset(shard, np.arange(2))
    bad["mean_act"] = bad["mean_act"][:, ::-1].copy()
    with pytest.raises(ValueError, match="descending"):
        analyze_shard(0, **bad)
    bad = subset(shard, np.arange(2))
    bad["token_ids"] = bad["token_ids"].copy()
    bad["token_ids"][0, 0] = -1
    with pytest.raises(ValueError, match="embedding"):
        analyze_shard(0, **bad)
    bad = subset(shard, np.arange(2))
    bad["tokens"] = bad["tokens"][:1]
    with pytest.raises(ValueError):
        analyze_shard(0, **bad)


def test_params_defaults_validation_and_foreign_keys():
    from intraneuron.config import load_schema

    documented = set(load_schema()["properties"]["analysis"]["properties"])
    assert set(DEFAULT_PARAMS) == documented - {"proxy", "sentence_model"}
    merged = resolve_params({"proxy": "input_embeddings", "sentence_model": "x", "alpha": 0.01})
    assert merged["alpha"] == 0.01 and "proxy" not in merged
    for bad in ({"linkage": "centroid"}, {"n_clusters": 1}, {"n_clusters": "many"},
                {"min_clusters": 5, "max_clusters": 3}, {"alpha": 1.5},
                {"permutations": 0}, {"cluster_selection": "gap"}, {"seed": -1}):  # fmt: skip
        with pytest.raises(ValueError):
            resolve_params(bad)


def test_fdr_layers_and_claims_tables(tables, shard):
    other = analyze_shard(4, params={"permutations": 200}, **shard_inputs(seed=5, planted_top=0))
    neurons = pd.concat([tables["neurons"], other["neurons"]], ignore_index=True)
    segments = pd.concat([tables["segments"], other["segments"]], ignore_index=True)
    clusters = pd.concat([tables["clusters"], other["clusters"]], ignore_index=True)
    with_q = add_layer_fdr(neurons)
    for col in ("kw_q", "runs_q", "ami_coarse_q", "top_fine_q", "coarse_trend_q"):
        assert col in with_q
        assert (with_q[col] >= with_q[col.replace("_q", "_p")] - 1e-12).all()
    # q-values are per layer: computing a layer alone gives the same numbers
    alone = add_layer_fdr(tables["neurons"])
    np.testing.assert_allclose(alone["kw_q"], with_q.loc[with_q["layer"] == 3, "kw_q"])

    layers = summarize_layers(with_q, segments, clusters)
    assert list(layers["layer"]) == [3, 4] and layers["n_neurons"].eq(10).all()
    for col in ("coarse_homogeneity_0", "coarse_homogeneity_3", "fine_homogeneity_9",
                "fine_z_0", "coarse_page_p", "kw_frac_q", "ami_coarse_median",
                "fine_top_position_p", "coarse_top_is_max_p", "interleaving_median"):  # fmt: skip
        assert col in layers
    assert "fine_homogeneity_10" not in layers
    # summarize_layers adds q-values itself when given raw neuron rows
    pd.testing.assert_frame_equal(layers, summarize_layers(neurons, segments, clusters))

    claims = evaluate_claims(layers)
    assert len(claims) == 6
    assert set(claims["claim"]) == {1, 2, 3}
    assert set(claims["verdict"]) <= {"supported", "mixed", "not supported"}
    for col in ("claim_text", "statistic", "value", "null_value", "p", "rule", "criteria"):
        assert claims[col].notna().all()


def test_wilcoxon_treats_discrete_mirror_values_as_ties():
    # positions {0, 1/3, 2/3, 1} balanced: centred values must be symmetric, p near 0.5
    position = np.repeat([0.0, 1 / 3, 2 / 3, 1.0], 100)
    assert wilcoxon_p(position - 0.5, "greater")[1] == pytest.approx(0.5, abs=0.05)


def test_benchmark_script_reports_last_line():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_analysis.py"), "--neurons", "6",
         "--vocab", "400", "--dim", "32", "--permutations", "50", "--workers", "1"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("neurons=6 permutations=50 wall_s=")
    assert "neurons_per_s=" in last
