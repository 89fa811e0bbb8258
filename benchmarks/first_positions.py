"""What leaving a window's first positions out of the statistics changes (extract.skip_first_positions).

Extracts the first --tokens tokens of a corpus tokens file twice, with 0 and with --skip skipped
positions per window, and prints per layer: the share of per-(token type, neuron) maxima that
sit at window offset 0 (all types, types seen at least --min-count times, core tokens; and at
offset --skip), the share of all counted tokens at offset 0, the mean |maximum| of the pairs
whose maximum is at offset 0 against the others, and how many of the neurons' core tokens (k,
min_count as in the demo) change; and the share of those maxima at each of the first
--profile offsets.

Example (the demo's smollm2 after a demo run):
    PYTHONPATH=src .venv/bin/python benchmarks/first_positions.py \
        --model resources/models/SmolLM2-135M-Instruct.Q4_1 \
        --tokens results/demo/models/smollm2/corpus/tokens.parquet --tokens-max 100000
"""

from __future__ import annotations

import argparse
import time


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True, help="a corpus tokens.parquet")
    ap.add_argument("--tokens-max", type=int, default=100_000)
    ap.add_argument("--layers", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--skip", type=int, default=1)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--min-count", type=int, default=20)
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--profile", type=int, default=12, help="offsets shown in the profile")
    return ap.parse_args(argv)


def window_offset(positions, starts):
    """Offset within its window of each global position (NaN-free: positions are counted)."""
    import numpy as np

    return positions - starts[np.searchsorted(starts, positions, side="right") - 1]


def main(argv=None) -> None:
    import numpy as np

    from intraneuron.core_tokens import select_core_tokens
    from intraneuron.extract import extract_statistics, window_offsets
    from intraneuron.models import load_model
    from intraneuron.pipeline import corpus_arrays

    args = parse_args(argv)
    windows, _, _ = corpus_arrays(args.tokens)
    lengths = np.array([len(w) for w in windows])
    n = int(np.searchsorted(np.cumsum(lengths), args.tokens_max, side="right"))
    windows = windows[:max(n, 1)]
    starts = window_offsets(np.array([len(w) for w in windows]))
    loaded = load_model({"id": args.model}, args.layers, device="cpu")
    runs = {}
    for skip in (0, args.skip):
        t = time.perf_counter()
        runs[skip], total = extract_statistics(loaded, args.layers, windows, starts,
                                               batch_tokens=args.batch_tokens, skip_first=skip,
                                               emit=lambda _: None)
        print(f"skip={skip}: {total:,} tokens in {len(windows)} windows, "
              f"{time.perf_counter() - t:.1f} s")
    for layer in args.layers:
        report_layer(layer, runs[0][layer], runs[args.skip][layer], starts, args,
                     select_core_tokens)


def report_layer(layer, base, skipped, starts, args, select) -> None:
    import numpy as np

    offset = window_offset(base.argmax, starts)
    first = offset == 0
    share_tokens = len(starts) / float(base.count.sum())
    print(f"layer {layer}: maxima at offset 0 with skip=0: {first.mean():.2%} "
          f"(offset 0 holds {share_tokens:.2%} of the tokens); "
          f"mean |max| there {np.abs(base.max[first]).mean():.3f}, "
          f"elsewhere {np.abs(base.max[~first]).mean():.3f}")
    off2 = window_offset(skipped.argmax, starts)
    print(f"layer {layer}: with skip={args.skip}: maxima at offset 0 {np.mean(off2 == 0):.2%}, "
          f"at offset {args.skip} {np.mean(off2 == args.skip):.2%} "
          f"(skip=0: {np.mean(offset == args.skip):.2%})")
    core = select(base, args.k, args.min_count)
    eligible = base.count >= args.min_count
    at = offset[eligible].ravel()
    profile = np.bincount(at)[:args.profile] / at.size
    print(f"layer {layer}: share of maxima per window offset 0..{args.profile - 1} with skip=0, "
          f"types seen >= {args.min_count} times (each offset holds {share_tokens:.2%} of "
          f"the tokens): " + " ".join(f"{x:.1%}" for x in profile))
    for lo, hi in ((args.profile, 32), (32, 64), (64, int(at.max()) + 1)):
        if lo < hi:
            print(f"layer {layer}:   offsets {lo}..{hi - 1}: {np.mean((at >= lo) & (at < hi)) / (hi - lo):.2%} "
                  "per offset")
    print(f"layer {layer}: maxima at offset 0 with skip=0 among types seen >= {args.min_count} "
          f"times: {first[eligible].mean():.2%}; among the neurons' core tokens: "
          f"{np.mean(window_offset(core.argmax, starts) == 0):.2%}")
    kept = skipped.count >= args.min_count
    print(f"layer {layer}: with skip={args.skip}, among types seen >= {args.min_count} times: "
          f"maxima at offset {args.skip} {np.mean(off2[kept] == args.skip):.2%} "
          f"(skip=0: {np.mean(offset[eligible] == args.skip):.2%})")
    a, b = core.token_ids, select(skipped, args.k, args.min_count).token_ids
    changed = np.array([args.k - len(np.intersect1d(x, y)) for x, y in zip(a, b, strict=True)])
    print(f"layer {layer}: core tokens (k={args.k}, min_count={args.min_count}) changed in "
          f"{np.mean(changed > 0):.1%} of {len(changed)} neurons; per neuron mean "
          f"{changed.mean():.2f}, max {changed.max()} of {args.k}")


if __name__ == "__main__":
    main()
