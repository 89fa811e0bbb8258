"""The running-statistics protocol: the packed (maximum, first position) key against plain
comparisons; add, merge, save and resume against one accumulator fed everything."""

import numpy as np
import pytest
import torch

from intraneuron.running_stats import Occurrences, TokenTypeStats, pack, unpack


def test_pack_orders_like_value_then_earlier_position():
    rng = np.random.default_rng(0)
    vals = torch.tensor(np.concatenate([rng.normal(size=200), [0.0, -0.5, 3.25, 3.25, -1e-30]]),
                        dtype=torch.float32)
    pos = torch.tensor(rng.permutation(len(vals)) * 7919 % (1 << 32), dtype=torch.int64)
    keys = pack(vals[:, None], pos)[:, 0]
    for i in range(len(vals)):
        for j in range(0, len(vals), 17):
            want = (vals[i] > vals[j]) or (vals[i] == vals[j] and pos[i] < pos[j])
            assert bool(keys[i] > keys[j]) == bool(want)
    v, p = unpack(keys)
    assert torch.equal(v, vals) and torch.equal(p, pos)


def test_update_keeps_first_occurrence_of_maximum_across_batches():
    st = TokenTypeStats.zeros(5, 2)
    st.add(Occurrences.of(torch.tensor([1, 1, 2]), torch.tensor([10, 11, 12])),
           torch.tensor([[1.0, 2.0], [3.0, 2.0], [0.5, -1.0]]))
    st.add(Occurrences.of(torch.tensor([1, 2]), torch.tensor([20, 21])),
           torch.tensor([[3.0, 5.0], [-2.0, -0.5]]))
    values, positions = unpack(st.key)
    assert values[1].tolist() == [3.0, 5.0] and positions[1].tolist() == [11, 20]
    assert values[2].tolist() == [0.5, -0.5] and positions[2].tolist() == [12, 21]
    assert st.count.tolist() == [0, 3, 2, 0, 0]
    assert torch.isinf(values[0]).all()


def random_batches(rows: int, n: int, batches: int, seed: int, start: int = 0):
    """(rows, acts, positions) batches over consecutive corpus positions; coarse values make ties."""
    rng = np.random.default_rng(seed)
    position = start
    for _ in range(batches):
        m = int(rng.integers(1, 9))
        yield (torch.from_numpy(rng.integers(0, rows, m)),
               torch.from_numpy(rng.choice([-1.0, 0.0, 0.5, 2.0], size=(m, n))).float(),
               torch.arange(position, position + m))
        position += m


def fed(batches, rows: int, n: int, origin: int = 0) -> TokenTypeStats:
    st = TokenTypeStats.zeros(rows, n, origin=origin)
    for r, acts, positions in batches:
        st.add(Occurrences.of(r, positions, origin), acts)
    return st


def assert_same(a, b):
    for field in ("token_ids", "count", "sum", "max", "argmax"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_merge_of_chunks_equals_one_accumulator_in_any_order():
    batches = list(random_batches(6, 3, 12, seed=4, start=2**33))
    whole = fed(batches, 6, 3, origin=2**33).compact()
    # Corpus chunks with their own origins, merged late-into-early and early-into-late.
    later = int(batches[5][2][0])

    def chunks():
        return fed(batches[:5], 6, 3, 2**33), fed(batches[5:], 6, 3, later)

    first, second = chunks()
    second.merge(first)
    assert second.origin == 2**33
    assert_same(second.compact(), whole)
    first, second = chunks()
    first.merge(second)
    assert_same(first.compact(), whole)
    with pytest.raises(ValueError, match="shape"):
        first.merge(TokenTypeStats.zeros(6, 4))


def test_compact_leaves_the_tables_and_into_compact_hands_them_over():
    st = fed(random_batches(4, 2, 6, seed=6), 4, 2)
    before = {name: getattr(st, name).clone() for name in ("count", "sum", "key")}
    first = st.compact()
    for name, table in before.items():
        assert torch.equal(getattr(st, name), table), name
    assert_same(st.into_compact(), first)
    with pytest.raises(RuntimeError, match="into_compact"):
        st.add(Occurrences.of(torch.tensor([0]), torch.tensor([0])), torch.ones(1, 2))


def test_positions_outside_the_packed_range_are_refused():
    with pytest.raises(ValueError, match="2\\^32"):
        Occurrences.of(torch.tensor([0, 1]), torch.tensor([5, 5 + 2**32]), origin=5)
    with pytest.raises(ValueError, match="origin"):
        TokenTypeStats.zeros(2, 1, origin=3).add(Occurrences.of(torch.tensor([0]),
                                                                torch.tensor([4])),
                                                 torch.ones(1, 1))
