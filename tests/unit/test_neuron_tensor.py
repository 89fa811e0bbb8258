"""Every architecture says, in one sentence, which tensor its neurons are, naming the module the
adapter actually hooks and on which side (input or output)."""

import pytest

from intraneuron.models import ARCHITECTURES, NEURON_TENSOR, neuron_tensor


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_each_architecture_documents_its_neuron_tensor(name):
    arch = ARCHITECTURES[name]
    text = neuron_tensor(name)
    module = arch.neuron_module
    assert f"`{module}`" in text or f"`{module.split('.')[-1]}`" in text, text
    side = {"output": "the output of", "input": "the input of"}[arch.capture]
    assert side in text
    assert set(NEURON_TENSOR) == set(ARCHITECTURES)
