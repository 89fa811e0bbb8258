"""Loading checkpoints named and cut as hub downloads are: no `transformer.` prefix, and only the
embeddings and first blocks present (the loader must never need the rest)."""

from __future__ import annotations

import shutil

import pytest
import torch
from helpers.tiny_checkpoints import rewrite_hub_style, tiny_gpt2

from intraneuron.models import ModelError, load_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A 4-block GPT-2 saved by save_pretrained (tensor names with `transformer.`)."""
    return tiny_gpt2(tmp_path_factory.mktemp("gpt2") / "saved", n_layer=4)


def hub_copy(saved, tmp_path, blocks):
    folder = tmp_path / "hub"
    shutil.copytree(saved, folder)
    return rewrite_hub_style(folder, blocks)


def activations(path, layers):
    loaded = load_model({"id": str(path)}, layers, device="cpu")
    out = {}
    ids = torch.arange(3, 20).view(1, -1)
    with loaded.capture(layers, lambda layer, acts: out.__setitem__(layer, acts.clone())):
        loaded.forward_until(ids, None)
    return loaded, out


def no_fallback(monkeypatch):
    """Fail if loading goes through from_pretrained instead of the tensor-by-tensor path."""
    from transformers import AutoModel

    def refuse(*args, **kwargs):
        raise AssertionError("fell back to from_pretrained")

    monkeypatch.setattr(AutoModel, "from_pretrained", refuse)


@pytest.mark.parametrize("blocks", [None, 2], ids=["whole", "embeddings+2-blocks"])
def test_hub_names_load_tensor_by_tensor(saved, tmp_path, monkeypatch, blocks):
    _, expected = activations(saved, [0, 1])
    hub = hub_copy(saved, tmp_path, blocks)
    no_fallback(monkeypatch)
    loaded, got = activations(hub, [0, 1])
    for layer in (0, 1):
        torch.testing.assert_close(got[layer], expected[layer], rtol=0, atol=0)
    if blocks is not None:  # never reached, absent from the file: NaN, so any use would show
        assert torch.isnan(loaded.model.ln_f.weight).all()


def test_missing_needed_block_is_an_error_not_random_weights(saved, tmp_path):
    hub = hub_copy(saved, tmp_path, 2)
    with pytest.raises(ModelError, match=r"lacks 12 tensors .*h\.2\.attn"):
        load_model({"id": str(hub)}, [2], device="cpu")


def test_provenance_names_the_hub_commit_used(saved, tmp_path):
    from helpers.tiny_checkpoints import hf_cache_entry

    from intraneuron.models import describe_model

    files = tmp_path / "files"
    shutil.copytree(saved, files)
    commit = "1d2c3b4a" * 5
    snapshot = hf_cache_entry(tmp_path / "hub", "org/tiny-gpt2", files, commit)
    model = {"id": str(snapshot), "revision": None}
    attrs = describe_model(load_model(model, [0], device="cpu"), model)
    assert attrs["model_revision"] == commit  # null revision: the default branch's commit
    assert attrs["weights"] == "hub-commit:" + commit


def test_windows_longer_than_the_models_positions_are_refused_early(saved, tmp_path):
    import json

    from intraneuron.corpus import CorpusError, tokenize_corpus
    from intraneuron.models import load_tokenizer

    folder = tmp_path / "no-limit"
    shutil.copytree(saved, folder)
    config = folder / "tokenizer_config.json"  # as with the hub's GPT-2 files: no length limit
    config.write_text(json.dumps({k: v for k, v in json.loads(config.read_text()).items()
                                  if k != "model_max_length"}))
    tokenizer = load_tokenizer(str(folder))
    assert tokenizer.model_max_length == 256  # tiny GPT-2's n_positions
    docs = [(0, "the red cat runs in the park " * 60)]
    assert tokenize_corpus(docs, tokenizer, window_tokens=256).num_rows > 1
    with pytest.raises(CorpusError, match="set window_tokens to at most 256"):
        tokenize_corpus(docs, tokenizer, window_tokens=257)
