"""Truncated loading, the blocked statistics update, positions, dtypes and out-of-memory back-off."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import safetensors
import torch
from helpers.tiny_checkpoints import tiny_bert, tiny_gpt2, tiny_llama

from intraneuron.extract import extract_statistics, window_offsets
from intraneuron.models import load_model
from intraneuron.running_stats import Occurrences, TokenTypeStats, Workspace, pack, unpack

BUILDERS = {"gpt2": tiny_gpt2, "bert": tiny_bert, "llama": tiny_llama}
BLOCK = re.compile(r"(?:^|\.)(?:h|layer|layers)\.(\d+)\.")


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def checkpoint(request, tmp_path_factory):
    return request.param, BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def windows_for(vocab: int, n: int = 8, length: int = 16, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, min(vocab, 30), length) for _ in range(n)]


def extract(loaded, windows, offsets=None, **kw):
    if offsets is None:
        offsets = window_offsets(np.array([len(w) for w in windows]))
    return extract_statistics(loaded, [0, 1], windows, offsets, batch_tokens=kw.pop("batch", 48),
                              emit=kw.pop("emit", lambda _: None), **kw)


def test_loading_reads_only_the_needed_tensors(checkpoint, monkeypatch):
    from transformers import AutoModel

    _, path = checkpoint
    read: list[str] = []
    original = safetensors.safe_open

    class Spy:
        def __init__(self, *args, **kwargs):
            self.inner = original(*args, **kwargs)

        def __enter__(self):
            self.inner.__enter__()
            return self

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

        def keys(self):
            return self.inner.keys()

        def get_tensor(self, key):
            read.append(key)
            return self.inner.get_tensor(key)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    loaded = load_model({"id": str(path)}, [1], device="cpu")
    blocks = {int(m.group(1)) for key in read if (m := BLOCK.search(key))}
    assert blocks == {0, 1}, read
    full = AutoModel.from_pretrained(path).eval().state_dict()
    for name, tensor in loaded.model.state_dict().items():
        torch.testing.assert_close(tensor, full[name], rtol=0, atol=0, msg=name)


def test_checkpoint_without_safetensors_falls_back(tmp_path):
    path = tiny_gpt2(tmp_path / "st")
    fast = load_model({"id": str(path)}, [0, 1], device="cpu")
    legacy = tmp_path / "bin"
    shutil.copytree(path, legacy)
    from safetensors.torch import load_file

    torch.save(load_file(legacy / "model.safetensors"), legacy / "pytorch_model.bin")
    (legacy / "model.safetensors").unlink()
    slow = load_model({"id": str(legacy)}, [0, 1], device="cpu")
    windows = windows_for(len(fast.tokenizer))
    a, _ = extract(fast, windows)
    b, _ = extract(slow, windows)
    for layer in (0, 1):
        np.testing.assert_array_equal(a[layer].sum, b[layer].sum)
        np.testing.assert_array_equal(a[layer].argmax, b[layer].argmax)


def test_blocked_update_equals_one_pass_for_any_dtype_and_layout():
    rng = np.random.default_rng(1)
    m, n = 37, 11
    rows = torch.from_numpy(rng.integers(0, 5, m))
    # Repeated values make ties, which the first position must win.
    base = torch.from_numpy(rng.choice([-1.5, -0.0, 0.0, 0.25, 2.0, 7.0], size=(m, n + 3)))
    positions = torch.arange(100, 100 + m)
    for acts in (base.float()[:, :n], base.bfloat16()[:, :n], base.half().contiguous()[:, :n]):
        want = torch.full((5, n), torch.iinfo(torch.int64).min)
        want.scatter_reduce_(0, rows[:, None].expand(-1, n), pack(acts, positions), "amax")
        for block in (1, n * 4, 10**6):
            st = TokenTypeStats.zeros(5, n)
            st.add(Occurrences.of(rows, positions), acts, Workspace(n, "cpu", block))
            assert torch.equal(st.key, want)
            expect = torch.zeros(5, n, dtype=torch.float64).index_add_(0, rows, acts.double())
            torch.testing.assert_close(st.sum, expect, rtol=1e-15, atol=0)


def test_positions_are_exact_far_into_the_corpus(tmp_path):
    path = tiny_gpt2(tmp_path / "m")
    loaded = load_model({"id": str(path)}, [0, 1], device="cpu")
    windows = windows_for(len(loaded.tokenizer))
    near, _ = extract(loaded, windows)
    start = 5 * 2**32 + 7
    offsets = window_offsets(np.array([len(w) for w in windows])) + start
    far, _ = extract(loaded, windows, offsets)
    for layer in (0, 1):
        np.testing.assert_array_equal(far[layer].argmax, near[layer].argmax + start)
        np.testing.assert_array_equal(far[layer].sum, near[layer].sum)
    with pytest.raises(ValueError, match="2\\^32"):
        extract(loaded, windows[:2], np.array([0, 2**32]))


def test_out_of_memory_backs_off_once_and_stays_exact(tmp_path, monkeypatch):
    path = tiny_gpt2(tmp_path / "m")
    loaded = load_model({"id": str(path)}, [0, 1], device="cpu")
    windows = windows_for(len(loaded.tokenizer), n=12)
    reference, _ = extract(loaded, windows, batch=16)
    forward = loaded.forward_until
    sizes: list[int] = []

    def fragile(ids, mask):
        sizes.append(ids.shape[0])
        if ids.shape[0] > 2:
            raise torch.OutOfMemoryError("simulated")
        return forward(ids, mask)

    monkeypatch.setattr(loaded, "forward_until", fragile)
    messages: list[str] = []
    got, total = extract(loaded, windows, batch=16 * 8, emit=messages.append)
    assert total == 12 * 16
    ooms = [m for m in messages if "out of memory" in m]
    assert len(ooms) == 2  # 8 -> 4 -> 2 windows, then every later batch starts at 2
    assert sizes[:3] == [8, 4, 2] and max(sizes[3:]) == 2
    for layer in (0, 1):
        np.testing.assert_array_equal(got[layer].count, reference[layer].count)
        np.testing.assert_allclose(got[layer].sum, reference[layer].sum, rtol=1e-12)
        np.testing.assert_array_equal(got[layer].max, reference[layer].max)
        np.testing.assert_array_equal(got[layer].argmax, reference[layer].argmax)


def test_bfloat16_compute_keeps_float64_sums(tmp_path):
    path = tiny_gpt2(tmp_path / "m")
    exact = load_model({"id": str(path), "dtype": "float32"}, [0, 1], device="cpu")
    low = load_model({"id": str(path), "dtype": "bfloat16"}, [0, 1], device="cpu")
    assert low.dtype == torch.bfloat16
    windows = windows_for(len(exact.tokenizer))
    a, _ = extract(exact, windows)
    b, _ = extract(low, windows)
    for layer in (0, 1):
        assert b[layer].sum.dtype == np.float64 and b[layer].max.dtype == np.float32
        np.testing.assert_array_equal(a[layer].count, b[layer].count)
        np.testing.assert_allclose(b[layer].mean, a[layer].mean, atol=0.05)
        np.testing.assert_allclose(b[layer].max, a[layer].max, atol=0.05)


def test_tables_hold_only_occurring_types(tmp_path, monkeypatch):
    path = tiny_gpt2(tmp_path / "m")
    loaded = load_model({"id": str(path)}, [0, 1], device="cpu")
    windows = windows_for(len(loaded.tokenizer))
    shapes: list[tuple[int, int]] = []
    zeros = TokenTypeStats.zeros.__func__

    def spy(cls, rows, n, *args, **kwargs):
        shapes.append((rows, n))
        return zeros(cls, rows, n, *args, **kwargs)

    monkeypatch.setattr(TokenTypeStats, "zeros", classmethod(spy))
    stats, _ = extract(loaded, windows * 4, n_neurons=5)
    types = len(np.unique(np.concatenate(windows)))
    assert shapes == [(types, 5), (types, 5)]
    values, positions = unpack(torch.tensor([torch.iinfo(torch.int64).min]))
    assert values.item() == -np.inf and positions.item() == np.iinfo(np.int64).max
    with pytest.raises(ValueError, match="vocabulary"):
        extract(loaded, [np.array([0, 10**6])])


def test_in_place_decoding_matches_the_general_one():
    from intraneuron.running_stats import NO_POSITION

    rng = np.random.default_rng(2)
    st = TokenTypeStats.zeros(6, 3, origin=10**10)
    for _ in range(3):
        rows = torch.from_numpy(rng.choice([1, 3, 4], 5))
        acts = torch.from_numpy(rng.normal(size=(5, 3))).float()
        positions = torch.from_numpy(rng.integers(10**10, 10**10 + 100, 5))
        st.add(Occurrences.of(rows, positions, 10**10), acts)
    general = st.compact()
    in_place = st.into_compact()
    for field in ("token_ids", "count", "sum", "max", "argmax"):
        np.testing.assert_array_equal(getattr(in_place, field), getattr(general, field))
    # A row counted but never added to (a hand-made state) decodes as empty.
    fresh = TokenTypeStats.zeros(4, 2)
    fresh.add(Occurrences.of(torch.tensor([2]), torch.tensor([7])), torch.tensor([[1.0, -1.0]]))
    fresh.count[1] = 1
    empty = fresh.compact()
    assert np.isneginf(empty.max[0]).all() and (empty.argmax[0] == NO_POSITION).all()
    assert empty.max[1].tolist() == [1.0, -1.0] and empty.argmax[1].tolist() == [7, 7]


def test_every_forward_pass_runs_on_the_same_thread_count(tmp_path, monkeypatch):
    """Statistics are added on one thread; the forward pass always gets its own count back,
    since a matmul's bits can depend on how many threads split it."""
    path = tiny_gpt2(tmp_path / "m")
    loaded = load_model({"id": str(path)}, [0, 1], device="cpu")
    forward = loaded.forward_until
    seen: list[int] = []

    def counting(ids, mask):
        seen.append(torch.get_num_threads())
        return forward(ids, mask)

    monkeypatch.setattr(loaded, "forward_until", counting)
    threads = torch.get_num_threads()
    extract(loaded, windows_for(len(loaded.tokenizer), n=12), batch=32)
    assert len(seen) == 6 and set(seen) == {threads}
    assert torch.get_num_threads() == threads
