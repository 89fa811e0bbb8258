"""The paper's config (config/config.yaml) rehearsed end to end, offline, on a stand-in gpt2-xl.

The stand-in sits in a temporary Hugging Face cache laid out as the hub client stores a download
(blobs, snapshots/<commit>, refs/main) and is found through the normal resolution path
(`model.id: gpt2-xl`, HF_HOME, HF_HUB_OFFLINE=1). It has GPT-2 XL's exact config.json (48 blocks,
6,400 MLP neurons per layer), GPT-2's real tokenizer and random weights named as the hub's GPT-2
files name them (no `transformer.` prefix); its safetensors file holds only the embeddings and
blocks 0-1, so the run proves the loader never needs the rest.

Config keys changed from config/config.yaml, and why:
- `corpus`: a local text corpus (the paper's default streams WikiText-103 from the network).
  ~9,800 tokens over 48 documents, built so that more than 100 token types occur at least 20
  times (`core_tokens.k` 100 and `min_count` 20 stay as they are).
- `analysis.permutations` and `analysis.geometry_surrogates`: 20 each instead of 1,000 and 500.
  The counts set only the resolution of the p-values, not the code path (every test, null and
  table is computed as at full size); at the paper's counts the analysis costs twice the CPU
  (benchmarks/bench_analysis.py: 31 against 15 ms per neuron).
- `analysis.power_blocks`: 1 instead of 4 (the power check's precision, not its code path).
- `ablation.neurons`: 4 instead of 145, `ablation.max_windows`: 2 instead of 200. The counts set
  only the verdict's power, not the code path; each neuron reruns a GPT-2 XL block four times on
  each of its windows of 1,024 tokens.
Everything else (model id, layers, n_neurons, block_size, window_tokens, batch_tokens, k,
min_count, proxy, seed, results dir) is the paper's config as committed.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.tiny_checkpoints import gpt2_xl_standin, hf_cache_entry
from helpers.workflow import REPO, job_counts, run_snakemake, write_config

from intraneuron import h5io
from intraneuron.corpus import read_tokens
from intraneuron.tables import read_provenance

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

COMMIT = "b0e1d2c3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9"  # the stand-in's hub commit
EOT = 50256  # <|endoftext|>
WINDOW = 1024
ABLATED = 4  # ablation.neurons (see the docstring)
ABLATION_WINDOWS = 2  # ablation.max_windows
PERMUTATIONS = 20
GEOMETRY_SURROGATES = 20
POWER_BLOCKS = 1
# config/config.yaml's own results folder (the rehearsal keeps it)
RESULTS = yaml.safe_load((REPO / "config/config.yaml").read_text())["results"]
MODEL = f"{RESULTS}/models/gpt2-xl"  # the one model, named after its id
BASE = f"{MODEL}/variants/base"
PAGE = f"{RESULTS}/report/models/gpt2-xl.html"

WORDS = {
    "animal": "cat dog horse bird fish mouse lion sheep goat wolf bear snake rabbit tiger duck",
    "colour": "red green blue yellow black white brown grey orange purple pink golden silver "
              "dark bright",
    "food": "bread cheese apple rice soup milk meat sugar butter honey salt wine tea coffee cake",
    "place": "park river house garden forest city school road village market church farm beach "
             "hill lake",
    "person": "man woman child teacher doctor farmer king queen soldier student mother father "
              "friend priest baker",
    "verb": "saw found liked ate carried painted watched followed heard called moved kept sold "
            "bought",
    "number": "two three four five six seven eight nine ten twelve twenty hundred many several "
              "few",
    "time": "morning evening night summer winter spring autumn Monday Sunday week year day month "
            "hour moment",
}
TEMPLATES = (
    "The {person} {verb} {number} {colour} {animal}s near the {place} one {time}.",
    "In the {time}, a {person} {verb} some {food} at the {place}.",
    "A {colour} {animal} {verb} the {food} of the {person} by the {place}.",
)


def write_corpus(folder, n_docs: int = 48, sentences: int = 16, seed: int = 0) -> None:
    """Short documents of simple English sentences whose ~150 words each recur often."""
    rng = random.Random(seed)
    words = {k: v.split() for k, v in WORDS.items()}
    folder.mkdir(parents=True)
    for d in range(n_docs):
        text = " ".join(rng.choice(TEMPLATES).format(**{k: rng.choice(v) for k, v in words.items()})
                        for _ in range(sentences))
        (folder / f"doc{d:02d}.txt").write_text(text + "\n", encoding="utf-8")


def paper_config(project) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config["model"]["id"] == "gpt2-xl" and config["corpus"]["window_tokens"] == WINDOW
    config["corpus"] = {"source": "text", "path": str(project / "corpus" / "*.txt"),
                        "max_tokens": config["corpus"]["max_tokens"], "window_tokens": WINDOW}
    config["analysis"]["permutations"] = PERMUTATIONS
    config["analysis"]["geometry_surrogates"] = GEOMETRY_SURROGATES
    config["analysis"]["power_blocks"] = POWER_BLOCKS
    config["ablation"]["neurons"] = ABLATED
    config["ablation"]["max_windows"] = ABLATION_WINDOWS
    return config


@pytest.fixture(scope="module")
def hf_env(tmp_path_factory):
    """A Hugging Face home whose cache holds only the stand-in gpt2-xl."""
    home = tmp_path_factory.mktemp("hf")
    files = gpt2_xl_standin(tmp_path_factory.mktemp("gpt2-xl-files"))
    hf_cache_entry(home / "hub", "gpt2-xl", files, COMMIT)
    return {"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"), "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def project(tmp_path_factory, hf_env):
    project = tmp_path_factory.mktemp("paper")
    write_corpus(project / "corpus")
    write_config(project, paper_config(project))
    run_snakemake(project, env=hf_env)
    return project


@pytest.fixture(scope="module")
def tokenizer(hf_env):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(f"{hf_env['HF_HUB_CACHE']}/models--gpt2-xl/snapshots/"
                                         f"{COMMIT}")


def test_dry_run_plans_16_shards(tmp_path, hf_env):
    (tmp_path / "corpus").mkdir()
    write_config(tmp_path, paper_config(tmp_path))
    empty = tmp_path / "empty-hf"
    for env in (hf_env, {"HF_HOME": str(empty), "HF_HUB_CACHE": str(empty / "hub")}):
        counts = job_counts(run_snakemake(tmp_path, "-n", env=env).stdout)
        assert counts["core_tokens"] == counts["analyze"] == 16, counts  # 2 layers x 6400 / 800
        assert counts["extract"] == 1 and counts["reduce_chunks"] == 2


def test_windows_of_1024_tokens(project):
    table, meta = read_tokens(project / MODEL / "corpus/tokens.parquet")
    lengths = table.column("n_tokens").to_numpy()
    assert (lengths[:-1] == WINDOW).all() and 0 < lengths[-1] <= WINDOW
    assert meta["n_documents"] == 48 and meta["tokenizer"].endswith(f"snapshots/{COMMIT}")
    ids = np.concatenate(table.column("input_ids").to_pylist())
    assert (ids == EOT).sum() == 47  # between documents only: GPT-2 adds no BOS/EOS itself


def test_longer_windows_would_be_refused(hf_env):
    from intraneuron.corpus import CorpusError, tokenize_corpus
    from intraneuron.models import load_tokenizer

    tokenizer = load_tokenizer(f"{hf_env['HF_HUB_CACHE']}/models--gpt2-xl/snapshots/{COMMIT}")
    assert tokenizer.model_max_length == 1024  # from n_positions: the files set no limit
    with pytest.raises(CorpusError, match="at most 1024"):
        tokenize_corpus([(0, "the cat " * 600)], tokenizer, window_tokens=WINDOW + 1)


def test_every_neuron_analysed_and_eot_never_a_core_token(project):
    neurons = pd.read_parquet(project / BASE / "neurons.parquet")
    neurons = neurons[neurons["kind"] == "neuron"]
    assert neurons.groupby("layer").size().to_dict() == {0: 6400, 1: 6400}
    tokens = pd.read_parquet(project / BASE / "tables/tokens.parquet")
    assert len(tokens) == 12800 * 100
    assert not (tokens["token_id"] == EOT).any()
    stats, _ = h5io.read_stats(project / MODEL / "activations/L0.h5", 0, slice(0, 1))
    eot = np.flatnonzero(stats.token_ids == EOT)
    assert eot.size and stats.count[eot[0]] >= 20  # frequent enough to be chosen if allowed


def test_tokens_shown_with_leading_spaces(project, tokenizer):
    tokens = pd.read_parquet(project / BASE / "tables/tokens.parquet")
    ids = tokens["token_id"].drop_duplicates()
    pieces = dict(zip(ids, tokenizer.convert_ids_to_tokens(ids.tolist()), strict=True))
    for token_id, token in tokens.drop_duplicates("token_id")[["token_id", "token"]].itertuples(
            index=False):
        assert token == tokenizer.decode([int(token_id)])
        assert token.startswith(" ") == pieces[token_id].startswith("Ġ"), (token_id, token)
    assert tokens["token"].str.startswith(" ").mean() > 0.5
    page = project / PAGE
    html = page.read_text(encoding="utf-8")
    assert "Ġ" not in html and "Ġ" not in "".join(tokens["context_left"])
    data = "".join(f.read_text(encoding="utf-8")
                   for f in page.with_name(page.stem + "_data").glob("*.js"))  # fmt: skip
    assert "Ġ" not in data
    assert '" farmer"' in data  # the neuron browser's token strings (loaded on demand), space kept


def test_hub_revision_in_provenance(project):
    attrs = h5io.read_attrs_only(project / MODEL / "activations/L0.h5")
    assert attrs["model_id"] == "gpt2-xl"
    assert attrs["model_revision"] == COMMIT and attrs["weights"] == f"hub-commit:{COMMIT}"
    assert attrs["model_path"].endswith(f"models--gpt2-xl/snapshots/{COMMIT}")
    for table in ("neurons", "claims", "tables/tokens"):
        assert read_provenance(project / BASE / f"{table}.parquet")["weights"] == \
            f"hub-commit:{COMMIT}"
    assert COMMIT in (project / PAGE).read_text(encoding="utf-8")


def release_files(root, tokens: pd.DataFrame, tokenizer, neurons: int) -> dict:
    """OpenAI-style related-tokens files for the first `neurons` neurons of each layer, in real
    GPT-2 token strings: 60 of our core tokens in reverse order, then 40 other vocabulary
    entries (byte tokens among them, which decode to U+FFFD). Returns the expected metrics."""
    others = [tokenizer.decode([i]) for i in range(180, 260)]
    expected = {}
    for (layer, neuron), grp in tokens.groupby(["layer", "neuron"]):
        if neuron >= neurons:
            continue
        ours = grp.sort_values("rank")["token"].tolist()
        theirs = ours[:60][::-1] + [t for t in others if t not in ours][:40]
        folder = root / "related-tokens" / "activation-based" / str(layer)
        folder.mkdir(parents=True, exist_ok=True)
        acts = np.linspace(5.0, 0.1, len(theirs)).tolist()
        (folder / f"{neuron}.json").write_text(json.dumps(
            {"tokens": theirs, "average_activations": acts}))
        expected[(layer, neuron)] = len(dict.fromkeys(theirs))
    return expected


def test_openai_comparison_on_real_gpt2_strings(project, hf_env, tokenizer, tmp_path):
    tokens = pd.read_parquet(project / BASE / "tables/tokens.parquet")
    expected = release_files(tmp_path / "openai", tokens, tokenizer, neurons=25)
    config = yaml.safe_load((project / "config.yaml").read_text())
    config["openai_comparison"] = {"directory": str(tmp_path / "openai")}
    write_config(project, config)
    counts = job_counts(run_snakemake(project, "-n", env=hf_env).stdout)
    assert counts == {"compare_openai": 1, "report_model": 1, "overview": 1}
    # The comparison's own output: the pages that show it are tested on the report's own
    # (tests/unit/test_report.py); rebuilding them at 12,800 neurons costs about a minute.
    run_snakemake(project, f"{MODEL}/openai_overlap.parquet", env=hf_env)
    out = pd.read_parquet(project / MODEL / "openai_overlap.parquet")
    assert len(out) == 12800 and int(out["found"].sum()) == 50
    found = out[out["found"]]
    n_openai = [expected[k] for k in zip(found["layer"], found["neuron"], strict=True)]
    assert found["n_openai"].tolist() == n_openai and (found["n_ours"] == 100).all()
    assert (found["overlap_n"] == 60).all()
    # Shared strings over the most that could be shared: byte tokens all decode to U+FFFD, so
    # their list has fewer than 100 distinct strings.
    np.testing.assert_allclose(found["overlap_frac"], 60 / np.minimum(100, n_openai))
    np.testing.assert_allclose(found["spearman_rho"], -1.0)  # we wrote their order reversed
    assert set(out.loc[~out["found"], "status"]) == {"missing"}
