"""Tiny real tokenizers built on the fly, so tests need no download and no cached model.

They are real ``transformers`` tokenizers (byte-level BPE like GPT-2, WordPiece like BERT), so
code under test goes through the same calls it makes on a production tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

TRAINING_SENTENCES = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog!",
    "Neurons in language models respond to tokens, words and phrases.",
    "Numbers like 42 and 3.14 appear in text; so do quotes \"like this\".",
    "Ünïcödé text, emoji 🙂 and 日本語 still become bytes.",
]

BERT_WORDS = [
    "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "in", "park", "bird", "sings",
    "##s", "##ing", ".", ",", "!", "?",
]


def tiny_gpt2_tokenizer(directory: str | Path, vocab_size: int = 400,
                        sentences: list[str] | None = None):
    """Train a byte-level BPE on a few sentences and load it as a GPT-2 tokenizer.

    Loaded with ``from_pretrained`` on the directory: in transformers 5 the ``vocab_file`` /
    ``merges_file`` constructor arguments are ignored, giving a one-token vocabulary.
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        sentences or TRAINING_SENTENCES, vocab_size=vocab_size, min_frequency=1,
        special_tokens=["<|endoftext|>"], show_progress=False,
    )
    bpe.save_model(str(directory))
    eot = "<|endoftext|>"
    config = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": 1024,
              "bos_token": eot, "eos_token": eot, "unk_token": eot}
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    (directory / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": eot, "eos_token": eot, "unk_token": eot}))
    return GPT2TokenizerFast.from_pretrained(str(directory))


def tiny_bert_tokenizer(directory: str | Path, words: list[str] | None = None):
    """A WordPiece (BERT-style) tokenizer over a handful of words; unknown words map to [UNK]."""
    from transformers import BertTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(words or BERT_WORDS)]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast.from_pretrained(str(directory))
