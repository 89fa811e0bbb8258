"""WordNet supersenses as a proxy: hand-checked words per part of speech, lemmatisation, and
the proxy in the analysis (categories recovered, non-words lowering coverage)."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from intraneuron.analysis import analyze_shard
from intraneuron.wordnet import LEXNAMES, WordNetError, load

WORDNET = "/usr/share/wordnet"
pytestmark = pytest.mark.skipif(not Path(WORDNET, "index.noun").exists(),
                                reason="Debian's wordnet-base is not installed")

# Checked by hand against WordNet 3.0's files (cntlist.rev counts, else the first sense).
EXPECTED = {
    "apple": "noun.food",
    "dog": "noun.animal",              # its verb sense (to chase) is counted less often
    "geese": "noun.animal",            # irregular plural, noun.exc
    "mice": "noun.animal",
    "eat": "verb.consumption",
    "went": "verb.motion",             # irregular past, verb.exc
    "ran": "verb.motion",
    "thought": "verb.cognition",       # the verb's sense is counted more often than the noun's
    "quickly": "adv.all",
    "happier": "adj.all",              # comparative, adj.exc
    "red": "adj.all",
    "Paris": "noun.location",
}


@pytest.fixture(scope="module")
def wordnet():
    return load(WORDNET)


@pytest.mark.parametrize("word", sorted(EXPECTED))
def test_hand_checked_supersenses(wordnet, word):
    assert wordnet.supersense(word) == EXPECTED[word]


def test_tokens_that_are_not_words_have_none(wordnet):
    for text in ("the", ",", "##ing", "<|endoftext|>", "1999", " "):
        assert wordnet.supersense(text) is None, text
    assert wordnet.supersense(" Dogs") == wordnet.supersense("dog")  # space, case, plural


def test_matrix_rows_are_category_indicators(wordnet):
    m = wordnet.matrix(["apple", "thought", "the"])
    assert m.shape == (3, len(LEXNAMES))
    assert m[0, LEXNAMES.index("noun.food")] == 1.0 and m[0].sum() == 1.0
    assert m[1, LEXNAMES.index("verb.cognition")] == 1.0
    assert not m[2].any()


def test_missing_files_name_the_folder_and_the_fix(tmp_path):
    with pytest.raises(WordNetError, match=r"index.noun.*wordnet-base.*analysis.wordnet_dir"):
        load(str(tmp_path))


def test_wordnet_proxy_in_the_analysis(wordnet):
    """Core tokens from three supersenses: clusters are the supersenses; a neuron whose core
    tokens are mostly non-words is excluded for coverage."""
    foods = ["apple", "bread", "cheese", "rice", "soup", "bean", "meat", "milk", "butter", "pie"]
    animals = ["dog", "horse", "cow", "sheep", "goat", "lion", "tiger", "wolf", "fox", "bird"]
    motion = ["run", "walk", "swim", "fly", "jump", "climb", "crawl", "ride", "drive", "march"]
    junk = [",", ".", ";", "!", "?", "(", ")", "##s", "##ed", "##ing", "'", '"', "-", "1", "2",
            "3", "10", "%", "$", "&"]
    vocab = foods + animals + motion + junk
    emb = wordnet.matrix(vocab)
    ids = np.stack([np.arange(30), np.r_[np.arange(0, 10), np.arange(30, 50)]])
    k = ids.shape[1]
    mean = -np.sort(-np.random.default_rng(0).random((2, k)), axis=1)
    params = {"permutations": 50, "controls": [],
              "structure_null_sets": 0, "n_clusters": 3}
    tables = analyze_shard(0, neurons=np.arange(2), token_ids=ids,
                           tokens=[[vocab[i] for i in row] for row in ids], mean_act=mean,
                           max_act=mean, counts=np.ones_like(ids), embeddings=emb, params=params)
    neu = tables["neurons"].set_index("neuron")
    tok = tables["tokens"]
    first = tok[tok["neuron"] == 0]
    assert adjusted_rand_score(first["token_id"] // 10, first["cluster"]) == 1.0
    assert neu.loc[0, "proxy_coverage"] == 1.0 and not neu.loc[0, "excluded"]
    assert neu.loc[1, "proxy_coverage"] == pytest.approx(10 / 30)
    assert neu.loc[1, "excluded"] and "coverage" in neu.loc[1, "exclusion_reason"]
