"""Prompt-based segmentation (`analysis.proxy: llm`): the scorer's shared-prefix batching gives
the log-likelihoods of whole forward passes, the real labeller sorts words as WordNet does far
beyond a shuffle, the validity check tells agreement from chance, answers are cached, and the
proxy's vectors are the categories' indicators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from intraneuron.config import ConfigError, validate
from intraneuron.labels.cache import AnswerCache
from intraneuron.labels.categories import (
    CategoryScorer,
    categorize_tokens,
    reference_logliks,
    validity,
)
from intraneuron.labels.prompts import default_prompts
from intraneuron.plan import proxy_key
from intraneuron.wordnet import load as load_wordnet

# Words of clearly different WordNet supersenses (animals, food, body, time, feelings, motion,
# people, plants), each group one category for a careful reader.
WORDS = ["dog", "cat", "horse", "sheep", "bread", "cheese", "soup", "apple", "knee", "arm",
         "nose", "finger", "Monday", "week", "year", "month", "anger", "fear", "joy", "love",
         "run", "walk", "jump", "swim", "teacher", "king", "mother", "doctor", "tree",
         "flower", "grass", "oak"]


@pytest.fixture(scope="module")
def scorer(smollm2_instruct):
    torch.set_num_threads(1)
    return CategoryScorer(str(smollm2_instruct), batch_size=8)


def test_batched_scores_equal_whole_forward_passes(scorer):
    # tokens whose questions differ in length, and names of one and of two tokens
    tokens = [" dog", "ing", " Wednesday"]
    questions = scorer.questions(tokens)
    batched = scorer.logliks(questions)
    names = default_prompts().categories
    checked = [i for i, ids in enumerate(scorer.options) if len(ids) > 1] + [0, 1]
    assert len(checked) > 2  # names of two tokens and of one
    for row, question in enumerate(questions):
        whole = reference_logliks(scorer.model, scorer.tokenizer,
                                  default_prompts().categorize_prefix(), question,
                                  [names[i] for i in checked])
        np.testing.assert_allclose(batched[row, checked], whole, atol=1e-3)


def ami_beyond_shuffles(categories: list[str], supersenses: list[str], n: int = 200):
    """The AMI of the categories with the supersenses, and the share of `n` shuffles of the
    categories that reach it (a permutation p)."""
    from sklearn.metrics import adjusted_mutual_info_score

    observed = adjusted_mutual_info_score(supersenses, categories)
    rng = np.random.default_rng(0)
    null = [adjusted_mutual_info_score(supersenses, rng.permutation(categories))
            for _ in range(n)]
    return observed, (1 + sum(x >= observed for x in null)) / (n + 1)


def test_the_labeller_sorts_words_as_wordnet_does_and_a_shuffle_does_not(scorer):
    wordnet = load_wordnet()
    supersenses = [wordnet.supersense(w) for w in WORDS]
    categories = scorer.categorize(scorer.questions([f" {w}" for w in WORDS]))
    ami, p = ami_beyond_shuffles(categories, supersenses)
    assert p < 0.01, (ami, list(zip(WORDS, categories, strict=True)))
    # the same check rejects categories that carry nothing of the words
    shuffled = list(np.random.default_rng(1).permutation(categories))
    assert ami_beyond_shuffles(shuffled, supersenses)[1] > 0.01


def table(supersenses: list[str], categories: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"token_id": range(len(categories)), "token": "x",
                         "category": categories, "supersense": supersenses})


def test_validity_finds_agreement_and_not_chance_and_counts_what_wordnet_lacks():
    rng = np.random.default_rng(0)
    senses = list(rng.choice(["noun.animal", "noun.food", "verb.motion", "noun.time"], 400))
    renamed = {"noun.animal": "animals", "noun.food": "food", "verb.motion": "actions",
               "noun.time": "times"}
    agree = validity(table(senses + ["", "", ""], [renamed[s] for s in senses]
                           + ["names", "names", "punctuation"]))
    assert agree["ami_wordnet"] == pytest.approx(1.0)
    assert agree["n_wordnet"] == 400 and agree["n_missed"] == 3
    assert agree["missed_categories"] == [("names", pytest.approx(2 / 3)),
                                          ("punctuation", pytest.approx(1 / 3))]
    chance = validity(table(senses, list(rng.permutation([renamed[s] for s in senses]))))
    assert abs(chance["ami_wordnet"]) < 0.05


def test_categories_are_cached_and_a_rerun_loads_no_model(scorer, tmp_path):
    tokens = pd.DataFrame({"token_id": [1, 2, 3], "token": [" dog", " bread", " run"]})
    cfg = {"model": "no/such/model", "batch_size": 8, "cache": str(tmp_path / "a.sqlite")}
    cache = AnswerCache(cfg["cache"])
    first, stats = categorize_tokens(tokens, cfg, cache, scorer=scorer)
    assert stats["asked"] == 3
    # the same labeller (by name) again: a missing answer would fail the test
    again, stats = categorize_tokens(tokens, cfg, cache, scorer=_Identity(scorer.identity))
    assert stats["asked"] == 0 and again["category"].tolist() == first["category"].tolist()


class _Identity:
    """A scorer that only has a name: asking it anything fails the test."""

    def __init__(self, identity):
        self.identity = identity

    def categorize(self, questions):
        raise AssertionError(f"asked {len(questions)} questions despite the cache")


def test_the_proxy_is_each_tokens_category_indicator(tmp_path, monkeypatch):
    from intraneuron import proxies

    names = default_prompts().categories
    path = tmp_path / "categories.parquet"
    table(["noun.animal", "", "noun.food"], [names[1], names[-1], names[3]]).assign(
        token_id=[0, 4, 7]).to_parquet(path)
    monkeypatch.setattr(proxies, "resolve_model_path", lambda *args: "m")
    monkeypatch.setattr(proxies, "load_tokenizer", lambda path: list(range(10)))
    matrix, attrs = proxies.llm_categories({"id": "m"}, str(path))
    assert matrix.shape == (10, len(names)) and attrs["categories"] == names
    assert matrix[0, 1] == matrix[4, len(names) - 1] == matrix[7, 3] == 1
    assert matrix.sum() == 3 and attrs["vocabulary_coverage"] == pytest.approx(0.3)
    table(["noun.animal"], ["vehicles"]).to_parquet(path)
    with pytest.raises(ValueError, match="not in the prompts file"):
        proxies.llm_categories({"id": "m"}, str(path))


def test_the_llm_proxy_names_its_core_folder_and_needs_a_local_labeller():
    assert proxy_key({"proxy": "llm", "proxy_centering": "none"}, "k100-abc") == "llm-k100-abc"
    with pytest.raises(ConfigError, match="analysis.proxy.*labels.backend"):
        validate({"analysis": {"proxy": "llm"},
                  "labels": {"backend": "openai", "url": "http://127.0.0.1:1/v1"}})
    with pytest.raises(ConfigError, match="analysis.proxy_centering"):
        validate({"analysis": {"proxy": "llm", "proxy_centering": "mean"}})
    validate({"analysis": {"proxy": "llm"}})
