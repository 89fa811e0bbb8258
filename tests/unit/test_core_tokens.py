"""Core-token selection and contexts against plain Python."""

from __future__ import annotations

import numpy as np
import pytest

from intraneuron.core_tokens import CoreTokenError, contexts, document_spans, select_core_tokens
from intraneuron.running_stats import CompactStats


def random_stats(seed=0, t=60, n=7):
    rng = np.random.default_rng(seed)
    count = rng.integers(1, 30, t)
    mean = rng.normal(size=(t, n)).round(1)  # rounding creates ties on purpose
    return CompactStats(np.arange(0, 2 * t, 2, dtype=np.int32), count, mean * count[:, None],
                        rng.normal(size=(t, n)).astype(np.float32), rng.integers(0, 999, (t, n)))


def test_selection_is_a_filtered_sort_with_id_tiebreak():
    st = random_stats()
    excluded = [0, 10, 20]
    core = select_core_tokens(st, k=8, min_count=10, excluded_ids=excluded)
    for j in range(st.sum.shape[1]):
        rows = [i for i in range(len(st.token_ids))
                if st.count[i] >= 10 and st.token_ids[i] not in excluded]
        rows.sort(key=lambda i: (-(st.sum[i, j] / st.count[i]), st.token_ids[i]))
        np.testing.assert_array_equal(core.token_ids[j], st.token_ids[rows[:8]])
        np.testing.assert_array_equal(core.count[j], st.count[rows[:8]])
        np.testing.assert_array_equal(core.argmax[j], st.argmax[rows[:8], j])
    assert core.n_eligible == len(rows)


def test_too_few_eligible_types_says_how_many():
    st = random_stats()
    eligible = int(((st.count >= 25)).sum())
    with pytest.raises(CoreTokenError, match=f"only {eligible} token types pass min_count=25"):
        select_core_tokens(st, k=eligible + 1, min_count=25)


def test_contexts_stay_inside_document_and_window():
    ids = np.arange(100, 120)
    docs = np.array([0] * 5 + [-1] + [1] * 4 + [1] * 6 + [2] * 4)   # window break at 10
    starts, stops = document_spans(docs, np.array([0, 10]))
    left, right = contexts(np.array([[2, 7], [11, 18]]), ids, starts, stops, 3,
                           lambda t: " ".join(map(str, t)))
    assert left.tolist() == [["100 101", "106"], ["110", "116 117"]]
    assert right.tolist() == [["103 104", "108 109"], ["112 113 114", "119"]]
