"""Throughput of the local labeller (intraneuron.labels.LocalBackend) on this machine: labels
per second at a few batch sizes, greedy decoding of the prompts file's few-shot label prompt.

    PYTHONPATH=src python benchmarks/bench_labels.py resources/models/SmolLM2-135M-Instruct.Q4_1 [threads]
"""

import sys
import time

import torch

from intraneuron.labels import LocalBackend, default_prompts

WORDS = ["dog", "cat", "horse", "cow", "sheep", "goat", "pig", "law", "contract", "court", "judge", "statute", "bill", "red", "blue", "green", "yellow", "purple", "tail", "fur", "claws", "head", "eyes", "run", "walk", "jump", "swim", "climb", "Paris", "London", "Berlin", "Rome", "Madrid", "apple", "banana", "cherry", "grape", "pear"]


def main(model: str, threads: int = 1) -> None:
    torch.set_num_threads(threads)
    prompts = default_prompts()
    # 48 token sets of 10 words each, as a cluster's or segment's listing
    sets = [[WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(10)] for i in range(48)]
    questions = [prompts.label_prompt(s) for s in sets]
    for batch in (1, 8, 16, 32):
        backend = LocalBackend(model, batch, prompts.label["max_new_tokens"])
        todo = questions[:16] if batch == 1 else questions
        start = time.perf_counter()
        backend.complete(todo)
        seconds = time.perf_counter() - start
        print(f"threads {threads} batch {batch:>2}: {len(todo) / seconds:5.2f} labels/s "
              f"({len(todo)} labels, {seconds:.1f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
