"""Table contract, determinism, shard-split invariance, params, and the layer, criteria, claims
and contrasts tables built from them."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from intraneuron.analysis import (
    DEFAULT_PARAMS,
    add_layer_fdr,
    analyze_shard,
    evaluate_claims,
    evaluate_criteria,
    layer_contrasts,
    resolve_params,
    summarize_layers,
)
from intraneuron.analysis.claims import judged
from intraneuron.analysis.columns import FDR_COLUMNS, TABLES, conform, fdr_columns
from intraneuron.analysis.criteria import CLAIM_TEXT, CRITERIA, EFFECTS
from intraneuron.analysis.layers import SUMMARY
from intraneuron.analysis.synthetic import synthetic_shard

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"permutations": 200, "geometry_surrogates": 200, "bootstrap": 200}
EVERY = DEFAULT_PARAMS["random_direction_every"]
# how the merge step orders rows (intraneuron.pipeline.SORT_KEYS)
SORT_KEYS = {"neurons": ["layer", "kind", "neuron"], "tokens": ["layer", "neuron", "rank"],
             "segments": ["layer", "kind", "neuron", "scheme", "segment"],
             "clusters": ["layer", "kind", "neuron", "cluster"]}  # fmt: skip
TOKEN_SET_KINDS = {"neuron", "random_direction"}  # kinds with their own token set (clusters)
VERDICTS = {"supported", "mixed", "not supported", "not testable", "not identifiable with this proxy"}


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


def sorted_rows(frame, name):
    return frame.sort_values(SORT_KEYS[name], kind="stable").reset_index(drop=True)


def names(table):
    return [c.name for c in TABLES[table]]


def assert_declared(frame, table, extra=()):
    """Exactly the declared columns of `table`, in order, each with its declared dtype."""
    columns = TABLES[table] + list(extra)
    assert list(frame.columns) == [c.name for c in columns]
    for c in columns:
        got = frame[c.name].dtype
        if c.dtype == "str":
            assert pd.api.types.is_string_dtype(got) or got == np.dtype(object), (c.name, got)
            assert frame[c.name].map(lambda v: isinstance(v, str)).all(), c.name
        elif c.dtype == "list":
            assert got == np.dtype(object), (c.name, got)
        elif c.dtype == "bool":
            assert got == np.dtype(bool), (c.name, got)
        else:
            assert got == np.dtype(c.dtype), (c.name, got)


@pytest.fixture(scope="module")
def shard():
    return shard_inputs()


@pytest.fixture(scope="module")
def tables(shard):
    return analyze_shard(3, params=PARAMS, **shard)


def test_tables_follow_the_contract(tables, shard):
    for name in ("neurons", "segments", "clusters"):
        assert_declared(tables[name], name)
        assert tables[name]["layer"].eq(3).all()

    neu = tables["neurons"]
    paired = [n for n in range(10) if n % EVERY == 0]
    assert sorted(neu.loc[neu["kind"] == "random_direction", "neuron"]) == paired
    for kind in ("neuron", "shuffled", "surrogate"):
        assert sorted(neu.loc[neu["kind"] == kind, "neuron"]) == list(range(10))
    assert len(neu) == 3 * 10 + len(paired)
    assert not neu[["neuron", "kind"]].duplicated().any()
    # synthetic activations have no ties: nothing is excluded
    assert not neu["excluded"].any() and neu["exclusion_reason"].eq("").all()
    assert neu["tied_share"].eq(0).all()
    # a neuron's shuffled and surrogate controls re-rank its own tokens: same clusters, same R^2
    same = neu[neu["kind"] != "random_direction"].groupby("neuron")
    for col in ("n_clusters", "silhouette", "mean_similarity", "surrogate_r2"):
        assert same[col].nunique(dropna=False).eq(1).all(), col
    assert neu.loc[neu["kind"] == "random_direction", "surrogate_r2"].isna().all()
    real = neu[neu["kind"] == "neuron"]
    assert real["surrogate_r2"].between(-np.inf, 1).all()
    np.testing.assert_allclose(real["kw_epsilon2"], real["kw_h"] / 99)
    np.testing.assert_allclose(real["kw_eta2"], (real["kw_h"] - real["n_clusters"] + 1)
                               / (100 - real["n_clusters"]))  # fmt: skip
    for col in [c.name for c in TABLES["neurons"] if c.name.endswith("_p")]:
        p = neu[col].dropna()
        assert p.between(1 / 201, 1).all() or col == "kw_p", col
    # geometry p-values exist for the rows whose own order the surrogates randomize
    geo = neu["ami_coarse_geo_p"].notna()
    assert (geo == neu["kind"].isin(["neuron", "random_direction"])).all()

    seg = tables["segments"]
    assert len(seg) == len(neu) * (4 + 10)
    assert set(seg["scheme"]) == {"coarse", "fine"}
    assert seg.groupby(["kind", "neuron", "scheme"])["size"].sum().eq(100).all()
    assert (seg["act_max"] >= seg["act_min"]).all()
    assert seg["p"].between(1 / 201, 1).all()

    clu = tables["clusters"]
    assert set(clu["kind"]) == TOKEN_SET_KINDS
    assert clu.groupby(["kind", "neuron"])["size"].sum().eq(100).all()
    per = clu.groupby(["kind", "neuron"]).size()
    want = neu[neu["kind"].isin(TOKEN_SET_KINDS)].set_index(["kind", "neuron"])["n_clusters"]
    pd.testing.assert_series_equal(per, want.sort_index(), check_names=False,
                                   check_dtype=False)  # fmt: skip
    # cluster 0 has the highest mean activation
    order = clu.groupby(["kind", "neuron"])["mean_activation"].apply(
        lambda s: s.is_monotonic_decreasing)
    assert order.all()
    assert clu["name"].str.count(" · ").le(2).all()
    assert clu.loc[clu["size"] >= 3, "name"].str.count(" · ").eq(2).all()

    tok = tables["tokens"]
    # the context columns come from `token_extras` (the workflow passes them)
    assert list(tok.columns) == names("tokens")[:-2]
    assert len(tok) == 10 * 100
    np.testing.assert_array_equal(tok["token_id"], shard["token_ids"].ravel())
    assert tok["token"].iloc[101] == shard["tokens"][1][1]
    first = tok[tok["neuron"] == 0]
    assert list(first["rank"]) == list(range(100))
    assert list(first["segment"]) == list(np.repeat(np.arange(4), 25))
    assert list(first["fine_segment"]) == list(np.repeat(np.arange(10), 10))
    counts = tok.groupby(["neuron", "cluster"]).size()
    mine = clu[clu["kind"] == "neuron"].set_index(["neuron", "cluster"])["size"]
    np.testing.assert_array_equal(counts.to_numpy(), mine.to_numpy())
    full = conform(tok.assign(context_left="<", context_right=">"), "tokens")
    assert_declared(full, "tokens")
    np.testing.assert_array_equal(full["mean_activation"], tok["mean_activation"])


def test_token_extras_follow_the_tokens(shard):
    small = subset(shard, np.arange(3))
    left = np.array([[f"L{n}:{i}" for i in range(100)] for n in range(3)], dtype=object)
    out = analyze_shard(0, params={"permutations": 20}, **small,
                        token_extras={"context_left": left, "context_right": left})
    tok = out["tokens"]
    assert list(tok.columns) == names("tokens")
    assert list(tok.loc[tok["neuron"] == 2, "context_left"]) == list(left[2])


def test_same_seed_same_tables_and_seed_matters(shard, tables):
    again = analyze_shard(3, params=PARAMS, **shard)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, again[name])
    other = analyze_shard(3, params={**PARAMS, "seed": 1}, **shard)
    assert not np.allclose(other["segments"]["null_mean"], tables["segments"]["null_mean"])
    seg, oseg = tables["segments"], other["segments"]
    # the neuron's own ranking does not depend on the seed; its shuffled control does
    for kind, equal in (("neuron", True), ("surrogate", True), ("shuffled", False)):
        a = seg.loc[seg["kind"] == kind, "homogeneity"].to_numpy()
        b = oseg.loc[oseg["kind"] == kind, "homogeneity"].to_numpy()
        assert np.allclose(a, b, equal_nan=True) == equal, kind
    # random directions are drawn from the seed
    rd = tables["clusters"]["kind"] == "random_direction"
    ord_ = other["clusters"]["kind"] == "random_direction"
    assert set(tables["clusters"].loc[rd, "name"]) != set(other["clusters"].loc[ord_, "name"])


@pytest.mark.parametrize("split", [5, 3])
def test_shard_split_does_not_change_rows(shard, tables, split):
    parts = [analyze_shard(3, params=PARAMS, **subset(shard, rows))
             for rows in (np.arange(split), np.arange(split, 10))]  # fmt: skip
    for name, frame in tables.items():
        joined = pd.concat([p[name] for p in parts], ignore_index=True)
        pd.testing.assert_frame_equal(sorted_rows(frame, name), sorted_rows(joined, name))
    kinds = pd.concat([p["neurons"] for p in parts])["kind"]
    assert (kinds == "random_direction").sum() == len(range(0, 10, EVERY))


def test_neuron_order_within_a_shard_does_not_change_rows(shard, tables):
    reverse = analyze_shard(3, params=PARAMS, **subset(shard, np.arange(10)[::-1]))
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(sorted_rows(frame, name), sorted_rows(reverse[name], name))


def test_controls_can_be_switched_off(shard):
    small = subset(shard, np.arange(4))
    out = analyze_shard(0, params={"permutations": 20, "controls": ["shuffled"]}, **small)
    assert set(out["neurons"]["kind"]) == {"neuron", "shuffled"}
    assert out["neurons"]["surrogate_r2"].isna().all()
    out = analyze_shard(0, params={"permutations": 20, "controls": [],
                                   "random_direction_every": 1}, **small)  # fmt: skip
    assert set(out["neurons"]["kind"]) == {"neuron"} and len(out["neurons"]) == 4
    out = analyze_shard(0, params={"permutations": 20, "controls": ["random_direction"],
                                   "random_direction_every": 1}, **small)  # fmt: skip
    assert (out["neurons"]["kind"] == "random_direction").sum() == 4


def test_ties_exclude_a_neuron_and_are_broken_by_seed(shard):
    small = subset(shard, np.arange(2))
    mean = small["mean_act"].astype(np.float64).copy()
    mean[1] = np.round(mean[1], 1)  # 100 values on 11 levels: nearly every token ties
    small["mean_act"] = mean
    out = analyze_shard(0, params={"permutations": 20}, **small,
                        boundary_ties=np.array([3, 0]))  # fmt: skip
    neu = out["neurons"]
    tied = neu[neu["neuron"] == 1]
    assert tied["excluded"].all() and (tied["tied_share"] > 0.9).all()
    assert tied["exclusion_reason"].str.startswith("ranking decided by ties").all()
    assert "analysis.max_tied_share = 0.1" in tied["exclusion_reason"].iloc[0]
    # neuron 0 has no tie inside its core set, but its last value ties with 3 types outside it
    untied = neu[(neu["neuron"] == 0) & (neu["kind"] == "neuron")]
    assert not untied["excluded"].any() and untied["tied_share"].iloc[0] == pytest.approx(0.01)
    # tied tokens are ordered by a seeded random order, not by token id or input order
    tok = out["tokens"][out["tokens"]["neuron"] == 1]
    assert tok["mean_activation"].is_monotonic_decreasing
    other = analyze_shard(0, params={"permutations": 20, "seed": 3}, **small)["tokens"]
    assert list(tok["token_id"]) != list(other.loc[other["neuron"] == 1, "token_id"])
    loose = analyze_shard(0, params={"permutations": 20, "max_tied_share": 1.0}, **small)
    assert not loose["neurons"]["excluded"].any()


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
        assert_declared(neu, "neurons")
        assert len(neu) == 2 * 3 + 1  # neuron 0 is paired with a random direction
        assert neu["n_clusters"].between(2, 10).all()
        if params.get("n_clusters") == 3:
            assert (neu["n_clusters"] == 3).all()
        if "n_segments" in params:
            assert len(out["segments"]) == len(neu) * (3 + 7)
            assert not out["clusters"]["name"].str.contains("·").any()


def test_small_k_gives_nan_for_single_token_segments():
    """Fine segments of 12 tokens: sizes 2,1,1,1,1,2,1,1,1,1. One-token segments have no
    homogeneity; the trend uses the two that have one, the excess needs two below the top."""
    small = shard_inputs(n=2, k=12, planted_top=0)
    out = analyze_shard(0, params={"permutations": 20, "fine_segments": 10}, **small)
    fine = out["segments"][out["segments"]["scheme"] == "fine"]
    assert fine.loc[fine["size"] == 1, "homogeneity"].isna().all()
    neu = out["neurons"]
    for (kind, neuron), rows in fine.groupby(["kind", "neuron"]):
        top, other = rows["homogeneity"].iloc[0], rows["homogeneity"].iloc[5]
        row = neu[(neu["kind"] == kind) & (neu["neuron"] == neuron)].iloc[0]
        assert np.isclose(row["fine_trend"], (top - other) / 5)  # heights 9 and 4
        assert np.isclose(row["fine_top_margin"], top - other)
    assert neu["fine_top_excess"].isna().all()
    assert set(out["neurons"]["kind"]) == {"neuron", "shuffled", "surrogate", "random_direction"}
    with pytest.raises(ValueError, match="at least"):
        analyze_shard(0, params={"fine_segments": 20}, **small)


def test_empty_shard_gives_empty_tables(shard):
    empty = subset(shard, np.arange(0))
    out = analyze_shard(0, **empty)
    assert all(len(frame) == 0 for frame in out.values())
    for name in ("neurons", "segments", "clusters"):
        assert_declared(out[name], name)
    neurons = add_layer_fdr(out["neurons"])
    assert len(neurons) == 0 and "kw_perm_q" in neurons
    layers = summarize_layers(neurons, out["segments"])
    assert len(layers) == 0 and {"layer", "kind"} <= set(layers.columns)
    criteria = evaluate_criteria(neurons)
    assert len(criteria) == 0
    assert_declared(criteria, "criteria")
    claims = evaluate_claims(criteria)
    assert len(claims) == 0
    assert_declared(claims, "claims")
    contrasts = layer_contrasts(criteria)
    assert len(contrasts) == 0
    assert_declared(contrasts, "contrasts")


def test_empty_shard_tokens_table_has_the_declared_columns(shard):
    out = analyze_shard(0, **subset(shard, np.arange(0)))
    assert list(out["tokens"].columns) == names("tokens")[:-2]


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
    small = subset(shard, np.arange(1))
    with pytest.raises(ValueError, match="eligible"):
        analyze_shard(0, **small, eligible=np.arange(50), eligible_tokens=["x"] * 50)


def test_params_defaults_validation_and_foreign_keys():
    from intraneuron.config import load_schema

    documented = set(load_schema()["properties"]["analysis"]["properties"])
    assert set(DEFAULT_PARAMS) == documented - {"proxy", "sentence_model", "wordnet_dir",
                                                "proxy_centering", "proxy_remove_directions"}
    merged = resolve_params({"proxy": "input_embeddings", "sentence_model": "x", "alpha": 0.01})
    assert merged["alpha"] == 0.01 and "proxy" not in merged
    for bad in ({"linkage": "centroid"}, {"n_clusters": 1}, {"n_clusters": "many"},
                {"min_clusters": 5, "max_clusters": 3}, {"alpha": 1.5},
                {"permutations": 0}, {"cluster_selection": "gap"}, {"seed": -1},
                {"controls": ["bogus"]}, {"controls": ["shuffled", "shuffled"]},
                {"random_direction_every": 0}, {"max_tied_share": 1.5},
                {"bootstrap": 10}, {"geometry_surrogates": -1},
                {"min_defined_share": 1.5}):  # fmt: skip
        with pytest.raises(ValueError):
            resolve_params(bad)


@pytest.fixture(scope="module")
def two_layers(tables):
    """Layer 3: planted neurons (top 10 ranks from one category); layer 4: null neurons."""
    other = analyze_shard(4, params=PARAMS, **shard_inputs(seed=5, planted_top=0))
    return {name: pd.concat([tables[name], other[name]], ignore_index=True)
            for name in ("neurons", "segments", "clusters")}


def test_fdr_q_values_per_layer_and_kind(two_layers, tables):
    neurons = two_layers["neurons"]
    with_q = add_layer_fdr(neurons, PARAMS)
    assert_declared(with_q, "neurons", fdr_columns())
    for col in FDR_COLUMNS:
        q_col = col[:-2] + "_q"
        for (_, _), grp in with_q.groupby(["layer", "kind"]):
            p = grp[col].to_numpy(dtype=float)
            ok = np.isfinite(p)
            want = np.full(p.size, np.nan)
            if ok.any():
                want[ok] = stats.false_discovery_control(p[ok], method="bh")
            np.testing.assert_allclose(grp[q_col].to_numpy(dtype=float), want, rtol=1e-12)
        ok = with_q[col].notna()
        assert (with_q.loc[ok, q_col] >= with_q.loc[ok, col] - 1e-12).all()
        assert with_q.loc[~ok, q_col].isna().all()
    # q-values are per (layer, kind): a layer alone, or one kind alone, gives the same numbers
    alone = add_layer_fdr(tables["neurons"], PARAMS)
    np.testing.assert_allclose(alone["kw_perm_q"], with_q.loc[with_q["layer"] == 3, "kw_perm_q"])
    only = add_layer_fdr(neurons[neurons["kind"] == "shuffled"], PARAMS)
    np.testing.assert_allclose(only["ami_coarse_q"],
                               with_q.loc[with_q["kind"] == "shuffled", "ami_coarse_q"])


def test_layer_summary_per_layer_and_kind(two_layers):
    neurons = add_layer_fdr(two_layers["neurons"], PARAMS)
    neurons.loc[(neurons["layer"] == 3) & (neurons["neuron"] == 1), "excluded"] = True
    layers = summarize_layers(neurons, two_layers["segments"], PARAMS)
    kinds = ["neuron", "random_direction", "shuffled", "surrogate"]
    assert list(zip(layers["layer"], layers["kind"], strict=True)) == [
        (layer, kind) for layer in (3, 4) for kind in kinds]
    counts = layers.set_index(["layer", "kind"])
    assert counts.loc[(3, "neuron"), "n_neurons"] == 10
    assert counts.loc[(3, "neuron"), "n_excluded"] == 1
    assert counts.loc[(4, "random_direction"), "n_neurons"] == len(range(0, 10, EVERY))
    for metric in SUMMARY:
        for suffix in ("median", "lo", "hi"):
            assert f"{metric}_{suffix}" in layers
        ok = layers[f"{metric}_median"].notna()
        assert (layers.loc[ok, f"{metric}_lo"] <= layers.loc[ok, f"{metric}_median"] + 1e-12).all()
        assert (layers.loc[ok, f"{metric}_hi"] >= layers.loc[ok, f"{metric}_median"] - 1e-12).all()
    # medians are over judged rows only (the excluded neuron is left out)
    kept = judged(neurons, 3, "neuron")
    assert len(kept) == 9
    assert counts.loc[(3, "neuron"), "ami_coarse_median"] == pytest.approx(
        kept["ami_coarse"].median())
    for col in ("coarse_homogeneity_0", "coarse_homogeneity_3", "fine_homogeneity_9",
                "coarse_homogeneity_dc_0", "fine_null_mean_0", "coarse_frac_p_0",
                "coarse_top_is_max_frac"):  # fmt: skip
        assert col in layers, col
    assert "fine_homogeneity_10" not in layers
    assert layers["layer"].dtype == np.int16
    # deterministic
    pd.testing.assert_frame_equal(layers, summarize_layers(neurons, two_layers["segments"],
                                                           PARAMS))


def test_criteria_claims_and_contrasts_tables(two_layers):
    neurons = add_layer_fdr(two_layers["neurons"], PARAMS)
    criteria = evaluate_criteria(neurons, PARAMS)
    assert_declared(criteria, "criteria")
    assert len(criteria) == 2 * (len(CRITERIA) + len(EFFECTS))
    tests = criteria[criteria["role"] == "test"]
    assert list(tests["criterion"].iloc[: len(CRITERIA)]) == [c.id for c in CRITERIA]
    defined = tests["defined_share"] >= DEFAULT_PARAMS["min_defined_share"]
    assert (tests["testable"] == (defined & ~tests["miscalibrated"])).all()
    by = criteria.set_index(["criterion", "layer"])
    alpha = DEFAULT_PARAMS["alpha"]
    # pass rates are the per-neuron rule applied to each kind's judged rows
    for layer in (3, 4):
        real = judged(neurons, layer, "neuron")
        row = by.loc[("1A", layer)]
        assert row["n_neuron"] == len(real)
        assert row["pass_neuron"] == pytest.approx(np.mean(real["ami_coarse_p"] < alpha))
        assert row["pass_neuron_lo"] <= row["pass_neuron"] <= row["pass_neuron_hi"]
        rd = judged(neurons, layer, "random_direction")
        assert row["n_random_direction"] == len(rd)
        assert row["pass_random_direction"] == pytest.approx(np.mean(rd["ami_coarse_p"] < alpha))
        # exists: neurons against the realised null rate of their own permutation rows
        rate = real["ami_coarse_null_rate"].mean()
        assert row["null_rate"] == pytest.approx(rate)
        hits = int(np.sum(real["ami_coarse_p"] < alpha))
        assert row["exists_p"] == pytest.approx(
            stats.binomtest(hits, len(real), rate, alternative="greater").pvalue)
        # beyond geometry: against the geometry rows' rate and the linear read-outs
        geo_hits = int(np.sum(real["ami_coarse_geo_p"] < alpha))
        rd_hits = int(np.sum(rd["ami_coarse_geo_p"] < alpha))
        assert row["smooth_p"] == pytest.approx(stats.fisher_exact(
            [[geo_hits, len(real) - geo_hits], [rd_hits, len(rd) - rd_hits]],
            alternative="greater").pvalue)
        # effect statement 1B: the median AMI of the neurons passing 1A
        wk = by.loc[("1B", layer)]
        related = real.loc[real["ami_coarse_p"] < alpha, "ami_coarse"]
        assert wk["role"] == "effect"
        if len(related):
            assert wk["effect"] == pytest.approx(related.median())
            assert wk["effect_holds"] == (wk["effect_hi"] < DEFAULT_PARAMS["weak_ami_max"])
    held = tests["exists_p"] < alpha
    assert (tests["exists"] == (held & tests["testable"])).all()
    assert not (criteria["beyond_geometry"] & ~criteria["exists"]).any()
    assert not (criteria["beyond_geometry"] & ~criteria["identifiable"]).any()
    # planted neurons are related above chance, null neurons are not
    assert by.loc[("1A", 3), "exists"] and by.loc[("3B", 3), "exists"]
    assert not by.loc[("1A", 4), "exists"] and not by.loc[("3B", 4), "exists"]

    claims = evaluate_claims(criteria, PARAMS)
    assert_declared(claims, "claims")
    assert list(zip(claims["claim"], claims["layer"], strict=True)) == [
        (c, layer) for c in (1, 2, 3) for layer in (3, 4)]
    assert set(claims["verdict_exists"]) <= VERDICTS
    assert set(claims["verdict_beyond_geometry"]) <= VERDICTS
    for _, r in claims.iterrows():
        assert r["claim_text"] == CLAIM_TEXT[r["claim"]]
        mine = tests[(tests["claim"] == r["claim"]) & (tests["layer"] == r["layer"])]
        assert list(r["criteria"]) == list(mine["criterion"])
        assert r["n_exist"] == mine["exists"].sum()
        assert r["n_beyond"] == mine["beyond_geometry"].sum()
    c1 = claims.set_index(["claim", "layer"])
    assert c1.loc[(1, 4), "verdict_exists"] == "not supported"
    assert c1.loc[(1, 3), "verdict_exists"] in {"supported", "mixed"}

    contrasts = layer_contrasts(criteria, PARAMS)
    assert_declared(contrasts, "contrasts")
    assert len(contrasts) == len(CRITERIA)
    assert (contrasts["layer_a"] == 3).all() and (contrasts["layer_b"] == 4).all()
    for _, r in contrasts.iterrows():
        want = by.loc[(r["criterion"], 4), "pass_neuron"] - by.loc[(r["criterion"], 3),
                                                                   "pass_neuron"]
        assert r["difference"] == pytest.approx(want)
        assert r["lo"] <= r["difference"] + 1e-12 and r["hi"] >= r["difference"] - 1e-12
    # one layer: no contrast; same inputs: same tables
    assert len(layer_contrasts(criteria[criteria["layer"] == 3], PARAMS)) == 0
    pd.testing.assert_frame_equal(criteria, evaluate_criteria(neurons, PARAMS))


def test_excluded_neurons_leave_the_verdicts(two_layers):
    neurons = two_layers["neurons"].copy()
    neurons.loc[neurons["layer"] == 4, "excluded"] = True
    criteria = evaluate_criteria(neurons, PARAMS)
    layer4 = criteria[criteria["layer"] == 4]
    assert (layer4["n_neuron"] == 0).all() and not layer4["testable"].any()
    tests = layer4["role"] == "test"
    assert layer4.loc[tests, "reason"].str.contains("excluded").all()
    assert layer4.loc[~tests, "reason"].str.contains("no neuron passes").all()
    assert not layer4["exists"].any()
    claims = evaluate_claims(criteria, PARAMS)
    mine = claims[claims["layer"] == 4]
    assert mine["verdict_exists"].eq("not testable").all()
    assert mine["verdict_beyond_geometry"].eq("not testable").all()
    layers = summarize_layers(neurons, two_layers["segments"], PARAMS)
    row = layers[(layers["layer"] == 4) & (layers["kind"] == "neuron")].iloc[0]
    assert row["n_excluded"] == row["n_neurons"] == 10 and np.isnan(row["ami_coarse_median"])
    assert len(layer_contrasts(criteria, PARAMS)) == 0  # no real neuron judged in layer 4


def test_benchmark_script_reports_last_line():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_analysis.py"), "--neurons", "6",
         "--vocab", "400", "--dim", "32", "--permutations", "50", "--geometry", "50",
         "--workers", "1"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("neurons=6 permutations=50 geometry=50 wall_s=")
    assert "neurons_per_s=" in last
