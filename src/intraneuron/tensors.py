"""Which tensor "the neuron" is, per architecture, in words: torch-free, so the report's
methods (a light job) can say it too."""

from __future__ import annotations

# One sentence each; a test checks every architecture of models.ARCHITECTURES has one naming
# the module it hooks.
NEURON_TENSOR: dict[str, str] = {
    "gpt2": "GPT-2: the output of the MLP's activation (`mlp.act`, GELU of `c_fc`), the tensor "
            "that enters the output projection `c_proj`; bounded below by GELU's minimum "
            "(about -0.17).",
    "bert": "BERT: the output of the `intermediate` module (its dense layer followed by its "
            "activation, `hidden_act`: GELU in BERT and MiniLM), the tensor that enters "
            "`output.dense`; bounded below as GELU is.",
    "llama": "Llama-style gated MLP: the input of `mlp.down_proj`, `act_fn(gate_proj(x)) * "
             "up_proj(x)` (SiLU gate times a linear unit), signed and unbounded in both "
             "directions, so a large negative value is as strong as a large positive one.",
}


def neuron_tensor(architecture: str) -> str:
    """The sentence of `NEURON_TENSOR` for an architecture name (a `ARCHITECTURES` key)."""
    return NEURON_TENSOR[architecture]
