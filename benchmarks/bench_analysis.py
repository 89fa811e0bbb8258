"""Wall time of the analysis stage at the paper's scale: 12,800 neurons x 100 core tokens.

Every neuron is analysed with its controls (shuffled, linear surrogate, and a random-direction
pseudo-neuron for every eighth neuron) and its geometry surrogates (--geometry), as the workflow
does by default. Random inputs with
realistic shapes (GPT-2 XL: vocabulary 50,257, embedding width 1,600) are
generated first and not timed. The timed part analyses the neurons in shards of --shard-size
(the workflow's block_size) on --workers processes with one BLAS thread each, which is how the
workflow runs analysis jobs side by side on a machine's cores. Workers are forked so they share
the embedding matrix instead of copying it.

The last line of output is exactly:
    neurons=<N> permutations=<P> geometry=<G> wall_s=<seconds> neurons_per_s=<rate>
"""

from __future__ import annotations

import argparse
import os
import sys
import time

DATA: dict = {}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--neurons", type=int, default=12800)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--geometry", type=int, default=500,
                    help="geometry surrogates per neuron (analysis.geometry_surrogates)")
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--dim", type=int, default=1600)
    ap.add_argument("--shard-size", type=int, default=800)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def make_data(args: argparse.Namespace) -> None:
    import numpy as np

    rng = np.random.default_rng(args.seed)
    DATA["embeddings"] = rng.standard_normal((args.vocab, args.dim), dtype=np.float32)
    ids = np.stack(
        [rng.choice(args.vocab, size=args.k, replace=False) for _ in range(args.neurons)]
    )
    DATA["token_ids"] = ids.astype(np.int32)
    DATA["tokens"] = [[f"t{t}" for t in row] for row in ids]
    mean = -np.sort(-rng.gamma(2.0, 1.0, size=(args.neurons, args.k)), axis=1)
    DATA["mean_act"] = mean.astype(np.float32)
    DATA["max_act"] = (mean * 3).astype(np.float32)
    DATA["counts"] = rng.integers(20, 5000, size=(args.neurons, args.k))
    DATA["params"] = {"permutations": args.permutations, "geometry_surrogates": args.geometry,
                      "seed": args.seed}


def run_shard(bounds: tuple[int, int]) -> tuple[int, int, int]:
    import numpy as np

    from intraneuron.analysis import analyze_shard

    lo, hi = bounds
    tables = analyze_shard(
        layer=0,
        neurons=np.arange(lo, hi),
        token_ids=DATA["token_ids"][lo:hi],
        tokens=DATA["tokens"][lo:hi],
        mean_act=DATA["mean_act"][lo:hi],
        max_act=DATA["max_act"][lo:hi],
        counts=DATA["counts"][lo:hi],
        embeddings=DATA["embeddings"],
        params=DATA["params"],
    )
    kinds = tables["neurons"]["kind"]
    return int((kinds == "neuron").sum()), len(kinds), len(tables["tokens"])


def main(argv=None) -> None:
    args = parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # before numpy is imported; analyze_shard also limits BLAS
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import multiprocessing as mp

    import intraneuron.analysis  # noqa: F401  (import cost is not part of the timing)

    t0 = time.perf_counter()
    make_data(args)
    print(f"data: {args.neurons} neurons x {args.k} tokens, embeddings {args.vocab} x "
          f"{args.dim} ({time.perf_counter() - t0:.1f} s, not timed)", flush=True)  # fmt: skip
    shards = [
        (lo, min(lo + args.shard_size, args.neurons))
        for lo in range(0, args.neurons, args.shard_size)
    ]
    start = time.perf_counter()
    cpu0 = os.times()
    if args.workers > 1:
        with mp.get_context("fork").Pool(args.workers) as pool:
            done = pool.map(run_shard, shards, chunksize=1)
    else:
        done = [run_shard(s) for s in shards]
    wall = time.perf_counter() - start
    cpu1 = os.times()
    cpu = sum(cpu1[i] - cpu0[i] for i in range(4))  # user + system, this process and workers
    assert sum(d[0] for d in done) == args.neurons
    rows = sum(d[1] for d in done)
    print(f"rows={rows} (neurons with their shuffled, surrogate and random-direction controls)",
          flush=True)
    print(f"shards={len(shards)} workers={args.workers} cpus={os.cpu_count()} "
          f"cpu_s={cpu:.2f} cpu_ms_per_neuron={1e3 * cpu / args.neurons:.2f} "
          f"load_avg={os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    print(
        f"neurons={args.neurons} permutations={args.permutations} geometry={args.geometry} "
        f"wall_s={wall:.2f} "
        f"neurons_per_s={args.neurons / wall:.1f}"
    )


if __name__ == "__main__":
    main()
