"""analysis.proxy_centering: removing an embedding space's common directions (issue 20, item 1).

Planted anisotropy: 20 categories around their own directions, every token also carrying a
common direction with a token-specific weight (lognormal, as frequency shapes real embedding
norms). The raw cosine is then dominated by that direction: the silhouette rule splits off a
few tokens with a small common weight (k = 2 with a sliver, as smollm2's layers showed) and
misses the categories; all-but-the-top recovers them. bb25b9d had no such option.
"""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from intraneuron.analysis import resolve_params
from intraneuron.analysis.clustering import choose_clusters
from intraneuron.analysis.similarity import cosine_similarity_matrix
from intraneuron.config import ConfigError, validate
from intraneuron.plan import proxy_key
from intraneuron.proxies import remove_common_directions, removed_directions


def anisotropic_vocab(rng: np.random.Generator, dim: int = 64, n_categories: int = 20,
                      per_category: int = 50) -> tuple[np.ndarray, np.ndarray]:
    centers = rng.standard_normal((n_categories, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    category = np.repeat(np.arange(n_categories), per_category)
    common = rng.standard_normal(dim)
    common /= np.linalg.norm(common)
    weight = rng.lognormal(1.5, 0.5, category.size)
    noise = 0.5 * rng.standard_normal((category.size, dim)) / np.sqrt(dim)
    vectors = centers[category] + noise + weight[:, None] * common
    return vectors.astype(np.float32), category


def recovered(vocab, category, ids) -> float:
    sim = cosine_similarity_matrix(vocab, ids).astype(np.float64)
    labels, _ = choose_clusters(sim, resolve_params(None), ids)
    return adjusted_rand_score(category[ids], labels)


def test_all_but_the_top_recovers_categories_the_raw_cosine_misses():
    rng = np.random.default_rng(0)
    vocab, category = anisotropic_vocab(rng)
    ids = np.concatenate([rng.choice(np.flatnonzero(category == c), 25, replace=False)
                          for c in (1, 4, 6, 9)])
    assert recovered(vocab, category, ids) < 0.2  # raw: the common direction wins
    cleaned, attrs = remove_common_directions(vocab, "abtt", 1)
    assert recovered(cleaned, category, ids) > 0.95
    assert attrs["removed_directions"] == 1 and attrs["removed_variance_share"][0] > 0.5


def test_centering_removes_the_mean_and_the_top_directions_exactly():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 12)) @ rng.standard_normal((12, 12)) + 5.0
    mean, _ = remove_common_directions(x, "mean")
    np.testing.assert_allclose(mean.mean(axis=0), 0.0, atol=1e-5)
    abtt, _ = remove_common_directions(x, "abtt", 3)
    centred = x - x.mean(axis=0)
    top = np.linalg.svd(centred, full_matrices=False)[2][:3]  # brute force: SVD directions
    np.testing.assert_allclose(abtt @ top.T, 0.0, atol=1e-4)
    np.testing.assert_allclose(abtt, centred - centred @ top.T @ top, atol=1e-4)
    same, attrs = remove_common_directions(x, "none")
    assert same is x and attrs == {"centering": "none"}


def test_number_of_directions():
    assert removed_directions("abtt", "auto", 576) == 6  # about one per 100 dimensions
    assert removed_directions("abtt", "auto", 32) == 1
    assert removed_directions("mean", 5, 576) == 0
    with pytest.raises(ValueError, match="proxy_remove_directions"):
        removed_directions("abtt", 12, 12)


def test_each_centering_is_its_own_embeddings_file():
    base = {"proxy": "input_embeddings", "proxy_centering": "none",
            "proxy_remove_directions": "auto"}
    keys = {proxy_key(base), proxy_key({**base, "proxy_centering": "mean"}),
            proxy_key({**base, "proxy_centering": "abtt"}),
            proxy_key({**base, "proxy_centering": "abtt", "proxy_remove_directions": 2})}
    assert len(keys) == 4 and proxy_key(base) == "input_embeddings"  # base file unchanged
    assert proxy_key({**base, "proxy_remove_directions": 2}) == "input_embeddings"


def test_wordnet_cannot_be_centred():
    with pytest.raises(ConfigError, match="proxy_centering.*wordnet"):
        validate({"analysis": {"proxy": "wordnet", "proxy_centering": "abtt"}})
    assert validate({"analysis": {"proxy_centering": "abtt"}})["analysis"][
        "proxy_remove_directions"] == "auto"


def test_the_embeddings_job_writes_centred_vectors_and_says_so(tmp_path):
    from helpers.tiny_checkpoints import tiny_gpt2

    from intraneuron import h5io
    from intraneuron.pipeline import proxy_embeddings

    model = {"id": str(tiny_gpt2(tmp_path / "gpt2"))}
    paths = {c: str(tmp_path / f"{c}.h5") for c in ("none", "abtt")}
    for centering, path in paths.items():
        proxy_embeddings(path, "input_embeddings", model, "", "", centering, 2)
    raw, _ = h5io.read_arrays(paths["none"])
    clean, attrs = h5io.read_arrays(paths["abtt"])
    want, _ = remove_common_directions(raw["embeddings"], "abtt", 2)
    np.testing.assert_allclose(clean["embeddings"], want, atol=1e-6)
    assert attrs["proxy_centering"] == "abtt" and attrs["proxy_removed_directions"] == 2
