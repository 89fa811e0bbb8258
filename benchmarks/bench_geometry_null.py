"""The planted benchmark of the geometry null: false-positive rates and power of every
criterion and claim, at both levels, over each model's real vocabulary and proxy.

Pseudo-neurons (`intraneuron.analysis.planted`) of null kinds (noise, noise of means, random
linear read-outs, GELU(read-out) + noise) and planted kinds (a WordNet supersense on top, a
proxy neighbourhood on top, a graded supersense effect; three strengths each) are analysed in
blocks of --block neurons through the workflow's own analyze_shard, evaluate_criteria and
evaluate_claims, each block judged as if it were a layer, with one random-direction
pseudo-neuron per pseudo-neuron as the linear read-outs the geometry level compares with. Inputs come from a finished run (`bash setup.sh demo`): each model's input
embeddings, eligible vocabulary (core tokens of layer 0) and corpus counts.

Writes a Markdown table (--out, default docs/geometry-null.md) and prints one line per model:
    model=<name> neurons=<N> wall_s=<s> smooth_fp_max=<rate> strong_power_min=<rate>
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from intraneuron.analysis.planted import (  # noqa: E402
    NULL_KINDS,
    PLANTED_KINDS,
    STRENGTHS,
    Vocabulary,
    pseudo_shard,
)

STATE: dict = {}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "config" / "demo.yaml"))
    ap.add_argument("--models", nargs="*", help="models of the config (default: all)")
    ap.add_argument("--block", type=int, default=48, help="pseudo-neurons per block")
    ap.add_argument("--null-blocks", type=int, default=8)
    ap.add_argument("--planted-blocks", type=int, default=3)
    ap.add_argument("--permutations", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "docs" / "geometry-null.md"))
    return ap.parse_args(argv)


def load_vocabulary(run: dict, model: str) -> tuple[Vocabulary, np.ndarray]:
    """The model's eligible vocabulary, counts, input embeddings and supersenses."""
    from intraneuron import h5io
    from intraneuron.proxies import wordnet_supersenses

    base = Path(run["results"]) / "models" / model
    embeddings = h5io.read_arrays(base / "embeddings" / "input_embeddings.h5")[0]["embeddings"]
    core = sorted(glob.glob(str(base / "core" / "*" / "L0" / "B0" / "core_tokens.h5")))
    if not core:
        raise SystemExit(f"{base}: no core tokens; run `bash setup.sh demo` first")
    eligible = h5io.read_arrays(core[0])[0]["eligible"].astype(np.int64)
    stats, _ = h5io.read_stats(base / "activations" / "L0.h5", 0, slice(0, 1))
    ids, counts = np.asarray(stats.token_ids), np.asarray(stats.count)
    count = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    supersenses, _ = wordnet_supersenses(run["model"], "/usr/share/wordnet")
    labels = np.where(np.any(supersenses != 0, axis=1), np.argmax(supersenses, axis=1), -1)
    vocab = Vocabulary(embeddings, eligible, [count.get(int(t), 1) for t in eligible],
                       labels[eligible])
    return vocab, embeddings


def tasks(args: argparse.Namespace) -> list[tuple[str, float, int]]:
    out = [(kind, 1.0, b) for kind in NULL_KINDS for b in range(args.null_blocks)]
    out += [(kind, s, b) for kind in PLANTED_KINDS for s in STRENGTHS
            for b in range(args.planted_blocks)]
    return out


def run_block(task: tuple[str, float, int]) -> pd.DataFrame:
    from threadpoolctl import threadpool_limits

    from intraneuron.analysis import analyze_shard

    kind, strength, block = task
    args, vocab, embeddings = STATE["args"], STATE["vocab"], STATE["embeddings"]
    kinds = (*NULL_KINDS, *PLANTED_KINDS)
    seed = [kinds.index(kind), int(round(strength * 3)), block]
    shard = pseudo_shard(vocab, kind, args.block, 100, seed=seed, strength=strength)
    eligible = shard.pop("eligible")
    params = {"permutations": args.permutations, "geometry_surrogates": args.permutations,
              "random_direction_every": 1, "bootstrap": 200}  # fmt: skip
    with threadpool_limits(1):
        tables = analyze_shard(block, params=params, embeddings=embeddings, eligible=eligible,
                               eligible_tokens=[f"#{t}" for t in eligible], **shard)
    return tables["neurons"].assign(pseudo=kind, strength=strength, block=block)


def judge(neurons: pd.DataFrame, params: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (kind, strength): per-criterion rates over neurons and over blocks, and per-claim
    block rates of reaching a verdict other than not supported / not identifiable."""
    from intraneuron.analysis import evaluate_claims, evaluate_criteria

    crit_rows, claim_rows = [], []
    for (kind, strength), group in neurons.groupby(["pseudo", "strength"], sort=False):
        criteria = evaluate_criteria(group.drop(columns=["pseudo", "strength", "block"]),
                                     params)  # each block is judged as a layer
        tests = criteria[criteria["role"] == "test"]
        claims = evaluate_claims(criteria, params)
        for crit, rows in tests.groupby("criterion", sort=False):
            crit_rows.append({"pseudo": kind, "strength": strength, "criterion": crit,
                              "exists_neurons": rows["pass_neuron"].mean(),
                              "geometry_neurons": rows["pass_geometry"].mean(),
                              "exists_blocks": rows["exists"].mean(),
                              "beyond_blocks": rows["beyond_geometry"].mean(),
                              "identifiable": rows["identifiable"].mean()})  # fmt: skip
        reached = ~claims["verdict_beyond_geometry"].isin(
            ["not supported", "not identifiable with this proxy"])
        for claim, rows in claims.assign(reached=reached).groupby("claim"):
            claim_rows.append({"pseudo": kind, "strength": strength, "claim": claim,
                               "exists_blocks": (rows["verdict_exists"] != "not supported").mean(),
                               "beyond_blocks": rows["reached"].mean()})  # fmt: skip
    return pd.DataFrame(crit_rows), pd.DataFrame(claim_rows)


def markdown(model: str, crit: pd.DataFrame, claims: pd.DataFrame, n: int) -> str:
    def pct(x):
        return f"{100 * x:.0f}"

    lines = [f"### {model}", "",
             "Per-neuron pass rates (%) against the permutation null (exists) / the geometry "
             "null, and in brackets the share of blocks where the criterion holds beyond "
             "geometry:", "",
             "| pseudo-neuron | strength | " + " | ".join(crit["criterion"].unique()) + " |",
             "| --- | --- |" + " --- |" * crit["criterion"].nunique()]  # fmt: skip
    for (kind, strength), rows in crit.groupby(["pseudo", "strength"], sort=False):
        cells = [f"{pct(r.exists_neurons)} / {pct(r.geometry_neurons)} "
                 f"[{pct(r.beyond_blocks)}]" for r in rows.itertuples()]
        label = "" if kind in NULL_KINDS else f"{strength:.2f}"
        lines.append(f"| {kind} | {label} | " + " | ".join(cells) + " |")
    lines += ["", "Claims: share of blocks (%) whose verdict is not 'not supported' at level "
              "exists / beyond geometry:", "",
              "| pseudo-neuron | strength | claim 1 | claim 2 | claim 3 |",
              "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for (kind, strength), rows in claims.groupby(["pseudo", "strength"], sort=False):
        cells = [f"{pct(r.exists_blocks)} / {pct(r.beyond_blocks)}" for r in rows.itertuples()]
        label = "" if kind in NULL_KINDS else f"{strength:.2f}"
        lines.append(f"| {kind} | {label} | " + " | ".join(cells) + " |")
    lines += ["", f"{n} pseudo-neurons.", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    from intraneuron.analysis.params import resolve_params
    from intraneuron.config import load_config_file, run_configs

    args = parse_args(argv)
    runs = run_configs(load_config_file(args.config))
    sections = [__doc__.split("\n\n")[0].replace("The planted", "# The planted"), ""]
    for model in args.models or list(runs):
        run = runs[model]["base"]
        STATE.update(args=args, **dict(zip(("vocab", "embeddings"),
                                           load_vocabulary(run, model), strict=True)))
        start = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as pool:
            neurons = pd.concat(pool.map(run_block, tasks(args)))
        wall = time.perf_counter() - start
        params = resolve_params({**run["analysis"], "permutations": args.permutations,
                                 "geometry_surrogates": args.permutations,
                                 "random_direction_every": 1, "bootstrap": 200})
        crit, claims = judge(neurons[~neurons["excluded"]], params)
        sections.append(markdown(model, crit, claims, int((neurons["kind"] == "neuron").sum())))
        smooth = crit[crit["pseudo"].isin(NULL_KINDS)]["beyond_blocks"].max()
        strong = crit[crit["strength"] == 1.0]
        power = strong[~strong["pseudo"].isin(NULL_KINDS)].groupby("pseudo")[
            "beyond_blocks"].max().min()
        print(f"model={model} neurons={len(neurons)} wall_s={wall:.1f} "
              f"smooth_fp_max={smooth:.3f} strong_power_min={power:.3f}", flush=True)
    Path(args.out).write_text("\n".join(sections))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
