"""The packed (maximum, first position) key against plain comparisons."""

import numpy as np
import torch

from intraneuron.stats import TokenTypeStats, pack, unpack


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
    st.update(torch.tensor([1, 1, 2]), torch.tensor([[1.0, 2.0], [3.0, 2.0], [0.5, -1.0]]),
              torch.tensor([10, 11, 12]))
    st.update(torch.tensor([1, 2]), torch.tensor([[3.0, 5.0], [-2.0, -0.5]]), torch.tensor([20, 21]))
    values, positions = unpack(st.key)
    assert values[1].tolist() == [3.0, 5.0] and positions[1].tolist() == [11, 20]
    assert values[2].tolist() == [0.5, -0.5] and positions[2].tolist() == [12, 21]
    assert st.count.tolist() == [0, 3, 2, 0, 0]
    assert torch.isinf(values[0]).all()
