"""Categorical-proximity proxies: the input embedding matrix and a sentence model's embeddings."""

import numpy as np
import torch
from helpers.tiny_checkpoints import tiny_bert, tiny_gpt2

from intraneuron.models import load_tokenizer
from intraneuron.proxies import input_embeddings, sentence_embeddings


def test_input_embeddings_are_the_model_matrix(tmp_path):
    from transformers import AutoModel

    path = tiny_gpt2(tmp_path / "gpt2")
    matrix, attrs = input_embeddings({"id": str(path)})
    want = AutoModel.from_pretrained(path).get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(matrix, want)
    assert attrs["dim"] == want.shape[1]


def test_sentence_embeddings_mean_pool_each_token_text(tmp_path):
    from transformers import AutoModel

    model = tiny_gpt2(tmp_path / "gpt2")
    encoder = tiny_bert(tmp_path / "bert")
    matrix, attrs = sentence_embeddings({"id": str(model)}, str(encoder), batch=64)
    tok = load_tokenizer(str(model))
    assert matrix.shape == (len(tok), 32) and attrs["sentence_model"] == str(encoder)
    # Brute force for a few token ids: encode the token's text alone, average over positions.
    enc_tok = load_tokenizer(str(encoder))
    enc = AutoModel.from_pretrained(encoder).eval()
    for token_id in (5, 50, 120):
        text = tok.decode([token_id]).strip() or tok.convert_ids_to_tokens(token_id)
        inputs = enc_tok([text], return_tensors="pt", truncation=True, max_length=16)
        with torch.no_grad():
            want = enc(**inputs).last_hidden_state[0].mean(0).numpy()
        np.testing.assert_allclose(matrix[token_id], want, rtol=1e-4, atol=1e-5)
