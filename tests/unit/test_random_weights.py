"""`model.weights: random`: the checkpoint's architecture with seeded fresh weights, through the
same truncated loader, and a fingerprint that never matches the pretrained one's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.tiny_checkpoints import tiny_bert, tiny_gpt2, tiny_llama

from intraneuron.extract import extract_statistics, window_offsets
from intraneuron.models import ModelError, _get, describe_model, load_model

BUILDERS = {"gpt2": tiny_gpt2, "bert": tiny_bert, "llama": tiny_llama}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def checkpoint(request, tmp_path_factory):
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def loaded(path, layers=(0, 1), **model):
    return load_model({"id": str(path), **model}, list(layers), device="cpu")


def means(model) -> np.ndarray:
    rng = np.random.default_rng(0)
    vocab = min(len(model.tokenizer), 40)
    windows = [rng.integers(0, vocab, 16) for _ in range(4)]
    offsets = window_offsets(np.array([len(w) for w in windows]))
    stats, _ = extract_statistics(model, [0, 1], windows, offsets, batch_tokens=64,
                                  emit=lambda _: None)
    return np.stack([stats[layer].mean for layer in (0, 1)])


def test_same_seed_gives_bitwise_identical_activations(checkpoint):
    a = means(loaded(checkpoint, weights="random", init_seed=3))
    b = means(loaded(checkpoint, weights="random", init_seed=3))
    assert np.isfinite(a).all() and a.std() > 0
    np.testing.assert_array_equal(a, b)


def test_other_seed_and_pretrained_differ(checkpoint):
    random0 = means(loaded(checkpoint, weights="random", init_seed=0))
    assert not np.allclose(random0, means(loaded(checkpoint, weights="random", init_seed=1)))
    pretrained = means(loaded(checkpoint))
    assert not np.allclose(random0, pretrained)
    np.testing.assert_array_equal(pretrained, means(loaded(checkpoint, weights="pretrained",
                                                           init_seed=5)))


def test_random_weights_do_not_depend_on_the_blocks_built(checkpoint):
    """The proxy job builds block 0 only; its embeddings must be those the extraction used."""
    deep = loaded(checkpoint, (0, 2), weights="random")
    shallow = loaded(checkpoint, (0,), weights="random")
    assert len(_get(shallow.model, shallow.arch.blocks)) == 1
    assert torch.equal(deep.input_embeddings(), shallow.input_embeddings())
    for a, b in zip(deep.block(0).parameters(), shallow.block(0).parameters(), strict=True):
        assert torch.equal(a, b)


def test_random_init_uses_the_architecture_initialiser(checkpoint):
    model = loaded(checkpoint, (0,), weights="random")
    std = float(model.input_embeddings().std())
    assert 0.01 < std < 0.03  # initializer_range 0.02, not the checkpoint's or torch's default


def test_fingerprint_names_random_init_and_its_seed(checkpoint):
    def describe(**model):
        return describe_model(loaded(checkpoint, (0,), **model), {"id": str(checkpoint)})

    pre, r0, r1 = describe(), describe(weights="random"), describe(weights="random", init_seed=1)
    assert r0["weights"].startswith("random-init:seed=0:")
    assert r1["weights"].startswith("random-init:seed=1:")
    assert len({pre["weights"], r0["weights"], r1["weights"]}) == 3
    assert "random initialisation" in r0["weights_origin"] and pre["weights_origin"] == ""


def test_unknown_weights_value_is_a_clear_error(checkpoint):
    with pytest.raises(ModelError, match="model.weights"):
        loaded(checkpoint, (0,), weights="trained")
