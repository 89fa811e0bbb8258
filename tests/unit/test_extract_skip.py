"""`extract.skip_first_positions`: the first positions of every window are run through the model
but left out of the statistics, exactly (against brute force), also when chunked."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.tiny_checkpoints import tiny_gpt2, tiny_llama
from unit.test_extract import brute_force, random_windows

from intraneuron.extract import chunk_batches, extract_statistics, window_offsets
from intraneuron.models import load_model
from intraneuron.running_stats import empty_compact, fold_into

QUIET = {"emit": lambda _: None}


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def checkpoint(request, tmp_path_factory):
    build = {"gpt2": tiny_gpt2, "llama": tiny_llama}[request.param]
    return build(tmp_path_factory.mktemp(request.param))


def run(path, windows, skip: int, **kwargs):
    loaded = load_model({"id": str(path)}, [0, 1], device="cpu")
    offsets = window_offsets(np.array([len(w) for w in windows]))
    return extract_statistics(loaded, [0, 1], windows, offsets, batch_tokens=70,
                              skip_first=skip, **QUIET, **kwargs)


@pytest.mark.parametrize("skip", [1, 3])
def test_skipped_positions_leave_the_statistics_exactly(checkpoint, skip):
    """Counts drop by exactly the tokens at the skipped offsets; means, maxima and their
    positions equal a brute-force loop over the full model that ignores those offsets (the
    model still sees them as context: activations later in the window are unchanged)."""
    windows = random_windows(400)
    # a type that occurs only at offset 0 must vanish from the tables
    windows[0] = windows[0].copy()
    windows[0][0] = 399
    stats, total = run(checkpoint, windows, skip)
    whole, _ = run(checkpoint, windows, 0)
    ref = brute_force(checkpoint, [0, 1], windows, skip=skip)
    assert total == sum(len(w) for w in windows)  # every token still runs through the model
    skipped = np.concatenate([w[:skip] for w in windows])
    for layer in (0, 1):
        st, r = stats[layer], ref[layer]
        np.testing.assert_array_equal(st.token_ids, r["types"])
        assert 399 not in st.token_ids and 399 in whole[layer].token_ids
        np.testing.assert_array_equal(st.count, r["count"])
        lost = {int(t): int((skipped == t).sum()) for t in whole[layer].token_ids}
        want = [whole[layer].count[i] - lost[int(t)] for i, t in enumerate(whole[layer].token_ids)]
        np.testing.assert_array_equal(st.count, [c for c in want if c > 0])
        np.testing.assert_allclose(st.mean, r["mean"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st.max, r["max"], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(st.argmax, r["argmax"])
        offsets = window_offsets(np.array([len(w) for w in windows]))
        within = st.argmax[st.argmax >= 0][:, None] - offsets[None, :]
        assert (np.where(within >= 0, within, np.inf).min(1) >= skip).all()


def test_skip_zero_is_the_old_extraction(checkpoint):
    windows = random_windows(400, seed=2)
    a, _ = run(checkpoint, windows, 0)
    loaded = load_model({"id": str(checkpoint)}, [0, 1], device="cpu")
    offsets = window_offsets(np.array([len(w) for w in windows]))
    b, _ = extract_statistics(loaded, [0, 1], windows, offsets, batch_tokens=70, **QUIET)
    for layer in (0, 1):
        np.testing.assert_array_equal(a[layer].count, b[layer].count)
        np.testing.assert_array_equal(a[layer].sum, b[layer].sum)
        np.testing.assert_array_equal(a[layer].argmax, b[layer].argmax)


def test_chunked_extraction_with_skipping_equals_a_whole_run(tmp_path):
    path = tiny_gpt2(tmp_path / "m")
    windows = random_windows(400, seed=3) * 2
    lengths = np.array([len(w) for w in windows])
    whole, _ = run(path, windows, 2)
    parts = [run(path, windows, 2, batches=chunk_batches(lengths, 70, 3, c))[0]
             for c in range(3)]
    for layer in (0, 1):
        ids = np.unique(np.concatenate([p[layer].token_ids for p in parts]))
        merged = empty_compact(ids, parts[0][layer].sum.shape[1])
        for p in parts:  # the exact reduce of the workflow's reduce_chunks stage
            fold_into(merged, p[layer])
        np.testing.assert_array_equal(merged.token_ids, whole[layer].token_ids)
        np.testing.assert_array_equal(merged.count, whole[layer].count)
        np.testing.assert_allclose(merged.mean, whole[layer].mean, rtol=1e-12)
        np.testing.assert_array_equal(merged.max, whole[layer].max)
        np.testing.assert_array_equal(merged.argmax, whole[layer].argmax)


@pytest.mark.parametrize(("skip", "match"), [(-1, "0 or more"), (24, "no window is longer")])
def test_a_skip_that_counts_nothing_is_a_clear_error(skip, match, tmp_path):
    path = tiny_gpt2(tmp_path / "m")
    with pytest.raises(ValueError, match=f"extract.skip_first_positions.*{match}"):
        run(path, random_windows(400), skip)
