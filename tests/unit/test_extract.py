"""Extraction against brute force: a plain loop over hooked activations of the FULL model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.tiny_checkpoints import tiny_bert, tiny_gpt2, tiny_llama

from intraneuron.core_tokens import select_core_tokens
from intraneuron.extract import chunk_batches, extract_statistics, plan_batches, window_offsets
from intraneuron.h5io import read_stats, write_stats
from intraneuron.models import ModelError, _get, load_model
from intraneuron.pipeline import reduce_chunks

BUILDERS = {"gpt2": tiny_gpt2, "bert": tiny_bert, "llama": tiny_llama}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def checkpoint(request, tmp_path_factory):
    return request.param, BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def random_windows(vocab: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # A small id range makes every type recur; one short window exercises a ragged batch.
    hi = min(vocab, 40)
    return [rng.integers(0, hi, 24) for _ in range(9)] + [rng.integers(0, hi, 11)]


def brute_force(path, layers, windows, skip: int = 0):
    """Hooks on the untruncated model, one window at a time, then Python dictionaries (the
    first `skip` positions of every window left out)."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(path).eval()
    loaded = load_model({"id": str(path)}, layers, device="cpu")
    arch = loaded.arch
    acts: dict[int, list] = {layer: [] for layer in layers}
    handles = []
    for layer in layers:
        module = _get(_get(model, arch.blocks)[layer], arch.neuron_module)
        if arch.capture == "output":
            handles.append(module.register_forward_hook(
                lambda _m, _i, out, layer=layer: acts[layer].append(out[0].detach().numpy())))
        else:
            handles.append(module.register_forward_pre_hook(
                lambda _m, inp, layer=layer: acts[layer].append(inp[0][0].detach().numpy())))
    with torch.no_grad():
        for w in windows:
            ids = torch.tensor(w)[None]
            model(input_ids=ids, attention_mask=torch.ones_like(ids))
    for h in handles:
        h.remove()
    ids = np.concatenate(windows)
    offset_in_window = np.concatenate([np.arange(len(w)) for w in windows])
    out = {}
    for layer in layers:
        a = np.concatenate(acts[layer])
        table: dict[int, list[int]] = {}
        for pos, t in enumerate(ids):
            if offset_in_window[pos] >= skip:
                table.setdefault(int(t), []).append(pos)
        types = sorted(table)
        out[layer] = {
            "types": np.array(types),
            "count": np.array([len(table[t]) for t in types]),
            "mean": np.array([a[table[t]].astype(np.float64).mean(0) for t in types]),
            "max": np.array([a[table[t]].max(0) for t in types]),
            "argmax": np.array([np.array(table[t])[a[table[t]].argmax(0)] for t in types]),
        }
    return out


def test_statistics_equal_brute_force(checkpoint):
    name, path = checkpoint
    loaded = load_model({"id": str(path)}, [0, 1], device="cpu")
    windows = random_windows(len(loaded.tokenizer))
    offsets = window_offsets(np.array([len(w) for w in windows]))
    stats, total = extract_statistics(loaded, [0, 1], windows, offsets, batch_tokens=70,
                                      emit=lambda _: None)
    ref = brute_force(path, [0, 1], windows)
    assert total == sum(len(w) for w in windows)
    for layer in (0, 1):
        st, r = stats[layer], ref[layer]
        np.testing.assert_array_equal(st.token_ids, r["types"])
        np.testing.assert_array_equal(st.count, r["count"])
        np.testing.assert_allclose(st.mean, r["mean"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st.max, r["max"], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(st.argmax, r["argmax"])
        # Core tokens are a sort of the extracted means (descending, ties by token id).
        core = select_core_tokens(st, k=5, min_count=1)
        for j in range(st.sum.shape[1]):
            order = sorted(range(len(st.token_ids)), key=lambda i: (-st.mean[i, j], st.token_ids[i]))
            np.testing.assert_array_equal(core.token_ids[j], st.token_ids[order[:5]])


def test_truncated_model_has_only_needed_blocks(checkpoint):
    name, path = checkpoint
    loaded = load_model({"id": str(path)}, [0], device="cpu")
    assert len(_get(loaded.model, loaded.arch.blocks)) == 1


def test_layer_past_depth_is_a_clear_error(checkpoint):
    name, path = checkpoint
    with pytest.raises(ModelError, match=r"layers \[3\] do not exist .* 3 blocks"):
        load_model({"id": str(path)}, [0, 3], device="cpu")


def test_chunked_reduce_equals_single_run(tmp_path):
    """Chunks run whole batches of the corpus-wide plan, so every activation is computed in
    the same batch as in a whole run: maxima and their positions are bitwise equal after the
    workflow's reduce of the chunk files."""
    path = tiny_gpt2(tmp_path / "m")
    loaded = load_model({"id": str(path)}, [0, 1], device="cpu")
    windows = random_windows(len(loaded.tokenizer), seed=3) * 2
    lengths = np.array([len(w) for w in windows])
    offsets = window_offsets(lengths)
    whole, _ = extract_statistics(loaded, [0, 1], windows, offsets, batch_tokens=64,
                                  emit=lambda _: None)
    parts = [extract_statistics(loaded, [0, 1], windows, offsets, batch_tokens=64,
                                batches=chunk_batches(lengths, 64, 3, c), emit=lambda _: None)[0]
             for c in range(3)]
    paths = [tmp_path / f"chunk{c}.h5" for c in range(len(parts))]
    for path, part in zip(paths, parts, strict=True):
        write_stats(path, part, {"token_count": 1})
    for layer in (0, 1):
        reduce_chunks([str(p) for p in paths], str(tmp_path / f"L{layer}.h5"), layer)
        merged, attrs = read_stats(tmp_path / f"L{layer}.h5", layer)
        assert attrs["token_count"] == len(parts)
        np.testing.assert_array_equal(merged.token_ids, whole[layer].token_ids)
        np.testing.assert_array_equal(merged.count, whole[layer].count)
        np.testing.assert_allclose(merged.mean, whole[layer].mean, rtol=1e-12)
        np.testing.assert_array_equal(merged.max, whole[layer].max)
        np.testing.assert_array_equal(merged.argmax, whole[layer].argmax)


@pytest.mark.parametrize("n_windows", [0, 1, 7, 100])
@pytest.mark.parametrize("chunks", [1, 3, 8])
def test_chunks_run_every_batch_of_the_whole_plan_once(n_windows, chunks):
    rng = np.random.default_rng(n_windows)
    lengths = rng.choice([5, 9, 16], size=n_windows)
    plan = plan_batches(lengths, 32)
    runs = [chunk_batches(lengths, 32, chunks, c) for c in range(chunks)]
    flat = [b for run in runs for b in run]
    assert len(flat) == len(plan)
    for got, want in zip(flat, plan, strict=True):
        np.testing.assert_array_equal(got, want)
    if n_windows >= chunks * 8:  # chunks are near-equal in tokens when there is enough to split
        tokens = [sum(int(lengths[b].sum()) for b in run) for run in runs]
        assert max(tokens) - min(tokens) <= 2 * 32
