"""Size and build time of the neuron browser's data files for a model of a given shape.

    python benchmarks/bench_browser.py --neurons 6400 --layers 2     # GPT-2 XL, layers 0 and 1

Synthetic content of realistic size: `--k` core tokens per neuron drawn from a vocabulary of
pseudo-words with a leading space (as byte-level BPE has them), contexts of random words cut
at the report's CONTEXT_CHARS on each side (so unique per token, the worst case for interning),
and 8 clusters per neuron. Prints the total size, the largest block file, the token index
size per layer and the build time; opening a neuron reads one block file. Then times the
rounding of one layer's token numbers both ways in the same run: the report's whole-array
`round4` against one `np.round` per number (how it was done before), and checks they agree.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from intraneuron.report import browser
from intraneuron.report.data import ReportData


def synthetic(n_neurons: int, layers: int, k: int, seed: int = 0) -> ReportData:
    rng = np.random.default_rng(seed)
    vocab = np.array([" " + "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"),
                                                 rng.integers(2, 9))) for _ in range(20000)])
    rows = layers * n_neurons * k
    words = vocab[rng.integers(0, len(vocab), (rows, 2, 12))]
    context = ["".join(w) for w in words.reshape(rows * 2, 12)]
    tokens = pa.table({
        "layer": np.repeat(np.arange(layers), n_neurons * k).astype(np.int16),
        "neuron": np.tile(np.repeat(np.arange(n_neurons), k), layers).astype(np.int32),
        "rank": np.tile(np.arange(k), layers * n_neurons).astype(np.int16),
        "token": vocab[rng.integers(0, len(vocab), rows)],
        "mean_activation": rng.gamma(2.0, 0.5, rows), "count": rng.integers(3, 5000, rows),
        "cluster": rng.integers(0, 8, rows), "segment": rng.integers(0, 4, rows),
        "fine_segment": rng.integers(0, 10, rows),
        "context_left": context[0::2], "context_right": context[1::2]})
    keys = pd.MultiIndex.from_product([range(layers), range(n_neurons)],
                                      names=["layer", "neuron"]).to_frame(index=False)
    neurons = keys.assign(excluded=False, exclusion_reason="",
                          **{c: rng.normal(size=len(keys)) for c, _ in browser.METRICS})
    clusters = keys.loc[keys.index.repeat(8)].assign(
        cluster=np.tile(np.arange(8), len(keys)), name=" alpha · beta · gamma", size=12,
        mean_activation=1.0)
    empty = pd.DataFrame()
    return ReportData(neurons=neurons, layers=empty, claims=empty, criteria=empty,
                      contrasts=empty, segments=empty, clusters=clusters, controls=empty,
                      control_segments=empty, tokens=tokens, config={"layers": list(range(layers))},
                      config_hash="bench")


def round_each(values) -> list:
    """The reference: 4 significant digits by one `np.round` call per number."""
    x = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
    out = []
    for v in x:
        if not np.isfinite(v):
            out.append(None)
            continue
        r = float(np.round(v, 3 - int(np.floor(np.log10(abs(v))))) if v else 0.0)
        out.append(int(r) if r.is_integer() and abs(r) < 2**53 else r)
    return out


def rounding_ratio(data: ReportData) -> str:
    """Seconds of both roundings over the first layer's mean activations, and their ratio."""
    values = browser.layer_tokens(data, 0)["mean_activation"]
    start = time.perf_counter()
    whole = browser.round4(values)
    mid = time.perf_counter()
    each = round_each(values)
    end = time.perf_counter()
    assert whole == each, "round4 disagrees with the per-number reference"
    return (f"rounding {len(values):,} numbers: per number {end - mid:.2f} s, whole array "
            f"{mid - start:.2f} s ({(end - mid) / (mid - start):.1f}x), identical")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=6400, help="neurons per layer")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--k", type=int, default=100, help="core tokens per neuron")
    args = parser.parse_args()
    data = synthetic(args.neurons, args.layers, args.k)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "page_data"
        start = time.perf_counter()
        manifest = browser.write_data(data, out, "page_data")
        seconds = time.perf_counter() - start
        blocks = sorted(out.glob("L*_N*.js"), key=lambda p: p.stat().st_size)
        index = sorted(out.glob("L*_index.js"), key=lambda p: p.stat().st_size)
        print(f"{args.layers} layers x {args.neurons:,} neurons x {args.k} core tokens: "
              f"{manifest['bytes'] / 1e6:.1f} MB in {len(blocks)} block files and {len(index)} "
              f"index files, written in {seconds:.1f} s")
        print(f"largest block file (read to open a neuron): {blocks[-1].stat().st_size / 1e6:.2f}"
              f" MB; largest token index (read by a search): {index[-1].stat().st_size / 1e6:.2f}"
              " MB")
    print(rounding_ratio(data))


if __name__ == "__main__":
    main()
