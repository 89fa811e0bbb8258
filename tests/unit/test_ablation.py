"""Patching the cached residual stream equals a full forward pass with the neuron changed."""

import numpy as np
import pytest
import torch
from helpers.tiny_checkpoints import tiny_bert, tiny_gpt2, tiny_llama

from intraneuron.ablation import NextLayerAblation, effect_ratio
from intraneuron.models import _get, load_model

BUILDERS = {"gpt2": tiny_gpt2, "bert": tiny_bert, "llama": tiny_llama}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def loaded(request, tmp_path_factory):
    path = BUILDERS[request.param](tmp_path_factory.mktemp(request.param))
    return load_model({"id": str(path)}, [0, 1, 2], device="cpu")


def hooked_forward(loaded, ids, layer, neuron, delta):
    """Reference: the whole model, with a hook changing the neuron's activation by delta."""
    arch = loaded.arch
    got = {}

    def change(acts):
        acts = acts.clone()
        acts[..., neuron] += delta
        return acts

    this = _get(loaded.block(layer), arch.neuron_module)
    nxt = _get(loaded.block(layer + 1), arch.neuron_module)
    if arch.capture == "output":
        h1 = this.register_forward_hook(lambda _m, _i, out: change(out))
        h2 = nxt.register_forward_hook(lambda _m, _i, out: got.__setitem__("acts", out.clone()))
    else:
        h1 = this.register_forward_pre_hook(lambda _m, inp: (change(inp[0]),))
        h2 = nxt.register_forward_pre_hook(lambda _m, inp: got.__setitem__("acts",
                                                                           inp[0].clone()))
    try:
        with torch.inference_mode():
            loaded.model(input_ids=ids, attention_mask=torch.ones_like(ids))
    finally:
        h1.remove()
        h2.remove()
    return got["acts"]


@pytest.mark.parametrize("layer", [0, 1])
def test_patch_equals_full_forward_with_the_neuron_zeroed(loaded, layer):
    rng = np.random.default_rng(layer)
    ids = torch.from_numpy(rng.integers(0, min(len(loaded.tokenizer), 40), (3, 16)))
    ablation = NextLayerAblation(loaded, layer)
    cache = ablation.cache(ids)
    baseline = hooked_forward(loaded, ids, layer, 0, torch.zeros(3, 16))
    torch.testing.assert_close(cache.next_acts, baseline, rtol=1e-5, atol=1e-6)
    for neuron in (0, 5):
        mask = torch.from_numpy(rng.random((3, 16)) < 0.3)
        delta = torch.where(mask, -cache.acts[..., neuron], torch.zeros(()))  # zero-ablation
        want = hooked_forward(loaded, ids, layer, neuron, delta)
        got = ablation.next_layer(cache, neuron, delta)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(got, cache.next_acts)  # the patch does change layer l + 1


def test_no_change_gives_the_cached_next_layer(loaded):
    ids = torch.arange(12)[None] % min(len(loaded.tokenizer), 30)
    ablation = NextLayerAblation(loaded, 0)
    cache = ablation.cache(ids)
    torch.testing.assert_close(ablation.next_layer(cache, 3, torch.zeros(1, 12)),
                               cache.next_acts, rtol=1e-6, atol=1e-7)


def test_effect_ratio_finds_a_planted_difference():
    rng = np.random.default_rng(3)
    mass = rng.uniform(1, 2, 40)
    windows = {"top_mass": mass, "top_effect": 2.0 * mass * rng.uniform(0.9, 1.1, 40),
               "lower_mass": mass, "lower_effect": mass * rng.uniform(0.9, 1.1, 40)}
    ratio, lo, hi = effect_ratio(windows, rng, 500)
    assert lo < np.log(2) < hi and lo > 0 and ratio == pytest.approx(np.log(2), abs=0.05)


def test_rerunning_only_some_windows_gives_those_windows_results(loaded):
    """Rows cut from every per-window argument (masks, rotary tables): the same next-layer
    neurons as the whole batch at those windows, up to float rounding of another batch shape."""
    torch.manual_seed(1)
    ids = torch.randint(1, loaded.model.config.vocab_size, (5, 7))
    ablation = NextLayerAblation(loaded, 0)
    cache = ablation.cache(ids)
    delta = torch.randn(5, 7)
    whole = ablation.next_layer(cache, 3, delta)
    rows = torch.tensor([1, 4])
    part = ablation.next_layer(cache, 3, delta[rows], rows)
    assert part.shape[0] == 2
    torch.testing.assert_close(part, whole[rows], rtol=1e-5, atol=1e-6)
    # an unpatched rerun of the same rows is the baseline: a zero change gives exactly zero
    base = ablation.next_layer(cache, 3, torch.zeros(2, 7), rows)
    assert torch.equal(ablation.next_layer(cache, 3, torch.zeros(2, 7), rows), base)
