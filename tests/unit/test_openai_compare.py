"""Comparison with OpenAI's related-tokens release, on files written in its format."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from intraneuron.openai_compare import COLUMNS, compare_with_openai, resolve_directory
from intraneuron.tables import atomic_parquet, read_provenance

SCRIPT = Path(__file__).parents[2] / "workflow" / "scripts" / "compare_openai.py"
VOCAB = [" the", "the", " The", "The", " dog", "dog", " Dog", " cat", "\n", " ", "  ", "\ufffd",
         " run", "ning", " 1", "1", " of", " and", ",", ".", " a", "A", " x", "X", "-"]


def write_release(folder: Path, layer: int, neuron: int, tokens: list[str],
                  acts: list[float] | None = None, **extra) -> Path:
    """One file as the release has it: best first, with its average activations."""
    if acts is None:
        acts = [float(len(tokens) - i) for i in range(len(tokens))]
    path = folder / str(layer) / f"{neuron}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"tokens": tokens, "average_activations": acts, **extra}),
                    encoding="utf-8")
    return path


def tokens_table(lists: dict[tuple[int, int], list[str]]) -> pd.DataFrame:
    """Our tokens table (only the columns the comparison reads), rows deliberately unsorted."""
    rows = [{"layer": layer, "neuron": neuron, "rank": rank, "token": tok}
            for (layer, neuron), toks in lists.items() for rank, tok in enumerate(toks)]
    return pd.DataFrame(rows).iloc[::-1].reset_index(drop=True)


def brute_force(ours: list[str], theirs: list[str], top_n: int) -> dict:
    """The metrics by explicit loops, independent of the module's set arithmetic."""
    def distinct(xs):
        out = []
        for x in xs:
            if x not in out:
                out.append(x)
        return out

    def norm(t):
        return t.strip().lower() or t

    a, b = distinct(ours), distinct(theirs)
    ta, tb = a[:top_n], b[:top_n]
    shared = [x for x in ta if any(x == y for y in tb)]
    union = list(ta)
    for y in tb:
        if y not in union:
            union.append(y)
    limit = min(top_n, len(a), len(b))
    na = sum(any(norm(x) == norm(y) for y in tb) for x in ta)
    nb = sum(any(norm(x) == norm(y) for x in ta) for y in tb)
    rho = math.nan
    if len(shared) >= 3:
        rho = spearmanr([ta.index(x) for x in shared], [tb.index(x) for x in shared])[0]
    return {"n_ours": len(a), "n_openai": len(b), "overlap_n": len(shared),
            "overlap_frac": len(shared) / limit, "jaccard": len(shared) / len(union),
            "overlap_norm_n": min(na, nb), "overlap_norm_frac": min(na, nb) / limit,
            "spearman_rho": rho}


@pytest.mark.parametrize("top_n", [1, 4, 10, 100])
def test_metrics_match_brute_force(tmp_path, top_n):
    rng = np.random.default_rng(top_n)
    folder = tmp_path / "activation-based"
    lists, theirs = {}, {}
    for layer in (0, 3):
        for neuron in range(12):
            ours = list(rng.choice(VOCAB, size=rng.integers(1, 20)))  # duplicates included
            other = list(rng.choice(VOCAB, size=rng.integers(1, 20)))
            lists[layer, neuron] = ours
            theirs[layer, neuron] = other
            write_release(folder, layer, neuron, other)
    out = compare_with_openai(tokens_table(lists), folder, top_n)
    assert list(out.columns) == COLUMNS
    assert len(out) == 24 and out["found"].all() and (out["status"] == "ok").all()
    assert list(zip(out["layer"], out["neuron"], strict=True)) == sorted(lists)
    for _, row in out.iterrows():
        key = (int(row["layer"]), int(row["neuron"]))
        want = brute_force(lists[key], theirs[key], top_n)
        for col, value in want.items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(row[col]), (key, col)
            else:
                assert row[col] == pytest.approx(value), (key, col)
        assert row["overlap_n"] <= row["overlap_norm_n"]
        assert 0 <= row["overlap_frac"] <= row["overlap_norm_frac"] <= 1


def test_exact_strings_normalised_overlap_and_rank_correlation(tmp_path):
    folder = tmp_path / "activation-based"
    ours = {(0, 0): [" the", " dog", " cat", " of"], (0, 1): [" a", " b", " c", " d"],
            (0, 2): [" a", " b", " c"]}
    write_release(folder, 0, 0, ["The", "dog", " cat", " of"])
    write_release(folder, 0, 1, [" d", " c", " b", " a"])
    write_release(folder, 0, 2, [" a", " b", " z"])
    out = compare_with_openai(tokens_table(ours), folder).set_index("neuron")
    assert out.loc[0, "overlap_n"] == 2 and out.loc[0, "overlap_norm_n"] == 4
    assert out.loc[0, "overlap_frac"] == 0.5 and out.loc[0, "overlap_norm_frac"] == 1.0
    assert out.loc[0, "jaccard"] == pytest.approx(2 / 6)
    assert out.loc[1, "spearman_rho"] == pytest.approx(-1.0)
    assert out.loc[1, "overlap_frac"] == 1.0 and out.loc[1, "jaccard"] == 1.0
    assert math.isnan(out.loc[2, "spearman_rho"])  # two shared tokens: no correlation
    assert out.loc[2, "overlap_frac"] == pytest.approx(2 / 3)


def test_ranked_by_average_activations_and_extra_fields_tolerated(tmp_path):
    folder = tmp_path / "activation-based"
    write_release(folder, 1, 5, [" low", " high", " mid", " x"], [0.1, 3.0, 2.0, 0.0],
                  neuron_id={"layer_index": 1, "neuron_index": 5}, note="extra")
    ours = {(1, 5): [" high", " mid", " other"]}
    out = compare_with_openai(tokens_table(ours), folder, top_n=2)
    assert out.loc[0, "overlap_n"] == 2 and out.loc[0, "n_openai"] == 4
    assert math.isnan(out.loc[0, "spearman_rho"])
    out = compare_with_openai(tokens_table(ours), folder, top_n=1)
    assert out.loc[0, "overlap_n"] == 1  # " high" is their best despite being listed second


def test_missing_and_invalid_files_are_not_found(tmp_path, caplog):
    folder = tmp_path / "activation-based"
    lists = {(0, n): [" a", " b", " c"] for n in range(4)}
    write_release(folder, 0, 0, [" a", " b", " c"])
    (folder / "0" / "2.json").write_text("{ truncated", encoding="utf-8")
    write_release(folder, 0, 3, [" a", " b"], [1.0])  # lengths disagree
    out = compare_with_openai(tokens_table(lists), folder).set_index("neuron")
    assert list(out["found"]) == [True, False, False, False]
    assert out.loc[1, "status"] == "missing"
    assert out.loc[2, "status"].startswith("invalid")
    assert out.loc[3, "status"].startswith("invalid: 'average_activations'")
    assert "2 unusable OpenAI files" in caplog.text
    lost = out.loc[[1, 2, 3]]
    assert lost["overlap_frac"].isna().all() and lost["jaccard"].isna().all()
    assert lost["overlap_n"].isna().all() and lost["n_openai"].isna().all()
    assert (lost["n_ours"] == 3).all()
    assert out.loc[0, "overlap_frac"] == 1.0


def test_directory_layouts_give_the_same_table(tmp_path):
    lists = {(0, 7): [" a", " b", " c", " d"], (1, 2): [" e", " f"]}
    mirror = tmp_path / "mirror"
    release = mirror / "neuron-explainer" / "data" / "related-tokens" / "activation-based"
    write_release(release, 0, 7, [" b", " a", " q"])
    write_release(release, 1, 2, [" f"])
    (mirror / "neuron-explainer" / "data" / "explanations" / "0").mkdir(parents=True)
    frames = [compare_with_openai(tokens_table(lists), d)
              for d in (release, release.parent, release.parents[1], mirror)]
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])
    assert frames[0]["found"].all()
    assert resolve_directory(mirror) == release
    renamed = tmp_path / "gpt2xl-tokens"  # the activation-based folder under another name
    release.rename(renamed)
    pd.testing.assert_frame_equal(compare_with_openai(tokens_table(lists), renamed), frames[0])


def test_bad_directory_is_a_clear_error(tmp_path):
    lists = {(0, 1): [" a"], (0, 2): [" b"]}
    with pytest.raises(FileNotFoundError, match="does not exist"):
        compare_with_openai(tokens_table(lists), tmp_path / "nowhere")
    other = tmp_path / "wrong"
    write_release(other / "related-tokens" / "activation-based", 5, 1, [" a"])  # other layer
    with pytest.raises(FileNotFoundError) as err:
        compare_with_openai(tokens_table(lists), other)
    message = str(err.value)
    assert str(other) in message and "related-tokens/activation-based/{layer}/{neuron}.json" \
        in message and "layers [0]" in message
    twice = tmp_path / "twice"
    for sub in ("a", "b"):
        (twice / sub / "related-tokens" / "activation-based").mkdir(parents=True)
    with pytest.raises(ValueError, match="several"):
        compare_with_openai(tokens_table(lists), twice)
    with pytest.raises(ValueError, match="top_n"):
        compare_with_openai(tokens_table(lists), other, top_n=0)


@pytest.mark.usefixtures("restore_logger")
def test_snakemake_script_writes_parquet_with_provenance(tmp_path):
    folder = tmp_path / "related-tokens" / "activation-based"
    write_release(folder, 0, 0, [" a", " b"])
    tokens_path = tmp_path / "tokens.parquet"
    atomic_parquet(tokens_table({(0, 0): [" a", " c"], (0, 1): [" d"]}).assign(
        token_id=1, mean_activation=np.float32(1)), tokens_path, {"model_id": "gpt2-xl"})
    out_path = tmp_path / "openai_overlap.parquet"
    smk = SimpleNamespace(input=SimpleNamespace(tokens=str(tokens_path)),
                          output=SimpleNamespace(overlap=str(out_path)),
                          params=SimpleNamespace(directory=str(tmp_path), top_n=100),
                          log=[str(tmp_path / "compare_openai.log")])
    runpy.run_path(str(SCRIPT), init_globals={"snakemake": smk})
    frame = pd.read_parquet(out_path)
    assert list(frame["found"]) == [True, False]
    assert frame.loc[0, "overlap_frac"] == 0.5
    meta = read_provenance(out_path)
    assert meta["model_id"] == "gpt2-xl" and meta["top_n"] == 100
    assert meta["openai_directory"] == str(folder)
    smk.params.directory = None
    with pytest.raises(SystemExit):
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": smk})
    assert "directory is not set" in (tmp_path / "compare_openai.log").read_text()
