"""Throughput of the prompt-based categories (analysis.proxy: llm) on this machine: tokens
sorted per second by the shared-prefix batched scorer, and its ratio to scoring each option by
one whole forward pass (what it replaces; the tests check both give the same log-likelihoods).
Both are measured in this one run, so the ratio holds on a noisy machine.

    PYTHONPATH=src python benchmarks/bench_categories.py resources/models/SmolLM2-135M-Instruct.Q4_1 [threads]
"""

import sys
import time

import torch

from intraneuron.labels.categories import CategoryScorer, reference_logliks

WORDS = ["dog", "cat", "horse", "bread", "cheese", "knee", "arm", "Monday", "week", "London", "anger", "fear", "run", "walk", "teacher", "king", "hammer", "water", "idea", "letter", "army", "tree", "the", "of", "ing", "ation", "1998", "John", ",", "."]


def main(model: str, threads: int = 1) -> None:
    torch.set_num_threads(threads)
    tokens = [f" {w}" for w in WORDS] * 4  # 120 tokens
    rates = {}
    for batch in (8, 16, 32):
        scorer = CategoryScorer(model, batch_size=batch)
        questions = scorer.questions(tokens)
        start = time.perf_counter()
        scorer.logliks(questions)
        seconds = time.perf_counter() - start
        print(f"threads {threads} batch {batch:>2}: {len(tokens) / seconds:6.2f} tokens/s "
              f"({len(tokens)} tokens, {seconds:.1f} s)", flush=True)
        rates[batch] = len(tokens) / seconds
    prefix, names = scorer.prompts.categorize_prefix(), scorer.prompts.categories
    start = time.perf_counter()
    for question in questions[:4]:
        reference_logliks(scorer.model, scorer.tokenizer, prefix, question, names)
    whole = 4 / (time.perf_counter() - start)
    print(f"whole forward passes: {whole:6.2f} tokens/s; batched with the shared prefix "
          f"(batch 16, labels.batch_size's default) / whole: {rates[16] / whole:.0f}x",
          flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
