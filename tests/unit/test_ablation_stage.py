"""The ablation stage: sampling, mass-matched conditions, shard independence, the layer verdict
against its swapped control, the tables and the report section."""

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.tiny_checkpoints import tiny_gpt2
from scipy import stats

from intraneuron import h5io, signtest
from intraneuron.ablation_stage import (
    Target,
    ablate_part,
    ablated_layers,
    matched_deltas,
    measure,
    merge_ablation,
    sample_neurons,
    summarise_layers,
    window_budget,
)
from intraneuron.analysis.columns import TABLES, conform
from intraneuron.models import load_model

VOCAB = 40


def neurons_table(n: int = 40) -> pd.DataFrame:
    rows = [{"layer": layer, "neuron": i, "kind": kind, "excluded": i % 10 == 3,
             "top_coarse_z": float(i) if i % 7 else np.nan}
            for layer in (0, 1) for i in range(n) for kind in ("neuron", "shuffled")]
    return pd.DataFrame(rows)


def test_sample_is_deterministic_stratified_and_only_analysed_neurons():
    frame = neurons_table()
    a = sample_neurons(frame, 0, 4, seed=3)
    assert list(a) == list(sample_neurons(frame, 0, 4, seed=3))
    assert len(a) == 4 and all(n % 10 != 3 for n in a)
    eligible = frame[(frame.layer == 0) & (frame.kind == "neuron") & ~frame.excluded]
    z = eligible.set_index("neuron")["top_coarse_z"]
    ordered = list(z.sort_values(na_position="last", kind="stable").index)
    strata = [set(s) for s in np.array_split(ordered, 4)]
    assert [sum(n in s for n in a) for s in strata] == [1, 1, 1, 1]  # one per stratum
    draws = {tuple(sample_neurons(frame, 0, 4, seed=s)) for s in range(20)}
    assert len(draws) > 5
    assert list(sample_neurons(frame, 1, 100, seed=0)) == sorted(eligible.neuron)


def test_only_layers_with_a_next_layer_are_ablated():
    assert ablated_layers([3, 0, 1]) == [0, 1]
    assert ablated_layers([5]) == []


def test_matched_deltas_remove_the_window_budget_under_every_condition():
    rng = np.random.default_rng(0)
    full = -rng.gamma(1.0, 1.0, (6, 20))  # zero-ablation of positive activations
    ids = rng.integers(0, 10, (6, 20))
    masks = {"top": ids < 3, "lower": (ids >= 3) & (ids < 6), "random": ids >= 6}
    budget = window_budget(np.abs(full), masks, quota=4)
    assert (budget > 0).sum() == 4 and (budget[4:] == 0).all()
    deltas = matched_deltas(full, masks, budget, rng)
    for name, mask in masks.items():
        np.testing.assert_allclose(np.abs(deltas[name]).sum(1), budget, rtol=1e-12)
        assert not (deltas[name][~mask]).any()  # only its own positions
        ratio = deltas[name][mask] / full[mask]
        assert ((ratio >= 0) & (ratio <= 1 + 1e-12)).all()  # at most a full ablation


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_gpt2(tmp_path_factory.mktemp("gpt2"))


def corpus(seed: int = 0, windows: int = 24, length: int = 16) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, VOCAB, length) for _ in range(windows)]


@pytest.mark.parametrize("method", ["zero", "mean"])
def test_conditions_are_matched_in_mass_per_window(model_dir, method):
    loaded = load_model({"id": str(model_dir)}, [0, 1], device="cpu")
    batches = [np.stack(corpus()[i:i + 4]) for i in range(0, 24, 4)]
    target = Target(5, np.arange(1, 5), np.arange(10, 22))
    (m,) = measure(loaded, batches, 0, [target], {"max_windows": 10, "method": method})
    w = m.arrays()
    assert m.n_windows == 10 and w["top_mass"].size == 10
    for name in ("lower", "random"):
        np.testing.assert_allclose(w[f"{name}_mass"], w["top_mass"], rtol=1e-9)
        assert (w[f"{name}_count"] > 0).all() and (w[f"{name}_effect"] > 0).all()


def write_inputs(directory, model_dir, n_neurons: int = 6) -> dict:
    """Corpus tokens, merged neurons and tokens tables and a proxy file, as the rules give them."""
    windows = corpus(1, windows=30)
    pq.write_table(pa.table({"input_ids": [w.tolist() for w in windows],
                             "n_tokens": [len(w) for w in windows]}), directory / "tokens.parquet")
    rng = np.random.default_rng(2)
    neurons = pd.DataFrame([{"layer": layer, "neuron": n, "kind": "neuron", "excluded": False,
                             "top_coarse_z": rng.normal()}
                            for layer in (0, 1) for n in range(n_neurons)])
    neurons.to_parquet(directory / "neurons.parquet")
    width = {0: n_neurons, 1: 48}  # every neuron of the next layer has core tokens
    core = pd.DataFrame([{"layer": layer, "neuron": n, "token_id": t, "segment": rank // 4}
                         for layer in (0, 1) for n in range(width[layer])
                         for rank, t in enumerate(rng.choice(VOCAB, 12, replace=False))])
    core.to_parquet(directory / "core.parquet")
    h5io.write_arrays(str(directory / "emb.h5"),
                      {"embeddings": rng.normal(size=(VOCAB, 8)).astype(np.float32)}, {})
    return {"tokens": str(directory / "tokens.parquet"), "core": str(directory / "core.parquet"),
            "neurons": str(directory / "neurons.parquet"), "embeddings": str(directory / "emb.h5")}


def run_parts(inputs, model_dir, directory, parts: int) -> list[str]:
    ablation = {"neurons": 4, "max_windows": 8, "bootstrap": 100, "top_next": 3, "parts": parts}
    paths = []
    for part in range(parts):
        paths.append(str(directory / f"part{parts}-{part}.parquet"))
        ablate_part(inputs, paths[-1], model={"id": str(model_dir), "revision": None,
                                              "architecture": "auto"},
                    dtype="float32", device="cpu", batch_tokens=64, ablation=ablation, layer=0,
                    part=part)
    return paths


def test_rows_do_not_depend_on_the_parts_and_conform(model_dir, tmp_path):
    inputs = write_inputs(tmp_path, model_dir)
    tables = {}
    for parts in (1, 2):
        out = (tmp_path / f"ablation{parts}.parquet", tmp_path / f"layers{parts}.parquet")
        merge_ablation(run_parts(inputs, model_dir, tmp_path, parts), str(out[0]), str(out[1]),
                       {"bootstrap": 100})
        tables[parts] = [pd.read_parquet(p) for p in out]
    pd.testing.assert_frame_equal(tables[1][0], tables[2][0])
    pd.testing.assert_frame_equal(tables[1][1], tables[2][1])
    per_neuron, layers = tables[1]
    assert list(per_neuron.columns) == [c.name for c in TABLES["ablation"]]
    assert len(per_neuron) == 4 and (per_neuron["n_windows"] == 8).all()
    np.testing.assert_allclose(per_neuron["lower_mass"], per_neuron["top_mass"], rtol=1e-9)
    assert (per_neuron["top_next"].map(len) == 3).all()
    assert (per_neuron["n_next_with_tokens"] > 0).all()
    assert np.isfinite(per_neuron["closeness_excess"]).all()
    assert list(layers["kind"]) == ["neuron", "swapped"]
    assert list(layers["verdict"]) == ["not testable", "calibrated"]  # 4 neurons: no test
    assert (layers["mde_sd"] == np.inf).all()


def planted(n_layers: int, n: int, rng: np.random.Generator, shift: float) -> pd.DataFrame:
    """Per-neuron rows whose log ratio is `shift` plus noise: top matters more when > 0."""
    rows = [{"layer": layer, "neuron": i, "ratio": shift + rng.normal(0, 0.1),
             "closeness_excess": rng.normal(), "top_vs_random": 0.5}
            for layer in range(n_layers) for i in range(n)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("shift", "word"), [(0.4, "supported"), (-0.4, "opposite")])
def test_layer_verdict_is_three_way_and_the_swapped_control_is_a_rate(shift, word):
    """Planted positive layers are supported, planted negative ones opposite (the old rule
    printed "not supported", as for no evidence). The swapped control is the rule's call rate
    over `swaps` random swaps per layer: at most alpha within binomial error, per layer and
    pooled over layers; so every control row is calibrated."""
    swaps, n_layers = 200, 40
    frame = planted(n_layers, 8, np.random.default_rng(5), shift=shift)
    layers = summarise_layers(frame, {"bootstrap": 200, "seed": 1, "swaps": swaps})
    real, swapped = layers[layers.kind == "neuron"], layers[layers.kind == "swapped"]
    assert (real["verdict"] == word).all()
    assert (real["mde_sd"] == signtest.minimal_detectable_effect(8, 0.05)).all()
    assert (swapped["n_swaps"] == swaps).all()
    calls = swapped["swap_supported"] + swapped["swap_opposite"]
    assert (calls <= stats.binom.isf(1e-3, swaps, 0.05)).all()
    assert calls.sum() <= stats.binom.isf(1e-3, swaps * n_layers, 0.05)
    assert (swapped["swap_supported"] > 0).any() and (swapped["swap_opposite"] > 0).any()
    np.testing.assert_allclose(swapped["swap_rate"], calls / swaps)
    assert (swapped["verdict"] == "calibrated").all()
    assert (swapped["ratio_lo"] < 0).all() and (swapped["ratio_hi"] > 0).all()  # a null band
    assert conform(layers, "ablation_layers").shape == layers.shape


def test_null_layers_are_inconclusive_at_least_1_minus_alpha_of_the_time():
    null = summarise_layers(planted(300, 12, np.random.default_rng(6), shift=0.0),
                            {"bootstrap": 200, "swaps": 20})
    verdicts = null.loc[null.kind == "neuron", "verdict"]
    assert set(verdicts) <= {"supported", "opposite", "inconclusive"}
    assert (verdicts != "inconclusive").sum() <= stats.binom.isf(1e-3, 300, 0.05)


def test_a_control_that_calls_too_often_is_not_calibrated(monkeypatch):
    """The control row can fail: a rule that calls every swap (here: a broken classify) makes
    it "not calibrated"."""
    monkeypatch.setattr(signtest, "classify", lambda *a: "supported")
    layers = summarise_layers(planted(1, 12, np.random.default_rng(0), 0.0), {"swaps": 50})
    assert layers.loc[layers.kind == "swapped", "verdict"].item() == "not calibrated"


def test_report_shows_the_ablation_section_only_when_given(tmp_path):
    from unit.test_report import synthetic_inputs

    from intraneuron.report import build_report
    from intraneuron.report.render import fmt
    from intraneuron.tables import atomic_parquet

    inputs, config = synthetic_inputs(tmp_path, n_neurons=8)
    rng = np.random.default_rng(0)
    rows = []
    for n in range(8):
        r = {c.name: 0 for c in TABLES["ablation"]}
        r.update(layer=0, neuron=n, method="zero", ratio=0.3 + rng.normal(0, 0.1),
                 ratio_lo=0.1, ratio_hi=0.5, top_next=[1, 2, 3], top_next_effect=[0.3, 0.2, 0.1],
                 closeness_excess=0.01)
        rows.append(r)
    per_neuron = conform(pd.DataFrame(rows), "ablation")
    with_ab = {**inputs, "ablation": str(tmp_path / "ablation.parquet"),
               "ablation_layers": str(tmp_path / "ablation_layers.parquet")}
    atomic_parquet(per_neuron, with_ab["ablation"], {})
    atomic_parquet(summarise_layers(per_neuron, {"bootstrap": 100}), with_ab["ablation_layers"],
                   {})
    build_report(with_ab, str(tmp_path / "a.html"), str(tmp_path / "figs"), config, "x")
    html = (tmp_path / "a.html").read_text(encoding="utf-8")
    section = html.split('<section id="ablation">')[1].split("</section>")[0]
    assert section.count('class="ablation-verdict"') == 1
    assert "Layer 0 → 1" in section and "supported" in section and "swapped control" in section
    mde = signtest.minimal_detectable_effect(8, 0.05)
    assert f"detectable with 80% power: a shift of {fmt(mde)} sd" in section
    calls = re.search(r"supported or opposite in (\d+) of 200 random swaps", section)
    assert calls and int(calls.group(1)) <= stats.binom.isf(1e-3, 200, 0.05)
    assert 'id="fig-ablation-ratios"' in section and 'id="ablation-examples"' in section
    assert "L1 #1" in section  # a most-affected next-layer neuron, with its core tokens
    assert (tmp_path / "figs" / "ablation_ratios.png").exists()
    build_report(inputs, str(tmp_path / "b.html"), str(tmp_path / "figs2"), config, "x")
    assert 'id="ablation"' not in (tmp_path / "b.html").read_text(encoding="utf-8")


def test_unit_mean_counts_repeats_and_skips_tokens_without_a_vector():
    from intraneuron.ablation_stage import unit_mean

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(50, 6))
    emb[7] = 0  # no proxy vector
    ids = rng.integers(0, 50, 300)
    kept = ids[ids != 7]
    want = (emb[kept] / np.linalg.norm(emb[kept], axis=1, keepdims=True)).mean(0)
    np.testing.assert_allclose(unit_mean(emb, ids, chunk=8), want, rtol=1e-12)
    assert unit_mean(emb, np.array([7, 7])) is None
