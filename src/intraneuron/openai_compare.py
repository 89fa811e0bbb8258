"""Our core tokens against OpenAI's "related tokens" for the same GPT-2 XL neurons.

OpenAI's automated-interpretability release ships, per neuron, the token strings with the
highest average activation over WebText (`related-tokens/activation-based/{layer}/{neuron}.json`
with `tokens` and `average_activations`). Both lists rank token *types* by mean activation, so
their agreement says how much our core tokens depend on our corpus rather than on the neuron.

Strings are compared, not token ids, because the release only has strings; both sides are
decoded GPT-2 tokens, so exact equality is meaningful (" the" is not "the"). Different ids can
decode to the same string (partial UTF-8 bytes all become "\\ufffd"), so each side is reduced to
its distinct strings, keeping the best rank.

Columns of the comparison table, one row per (layer, neuron) of our tokens table:

- `found`: a readable file exists for the neuron; `status`: "ok", "missing" or "invalid: why".
- `top_n`: how many of each side's best tokens are compared.
- `n_ours`, `n_openai`: distinct token strings on each side (before cutting to `top_n`).
- `overlap_n`: strings in both top-`top_n` lists; `overlap_frac`: that over
  min(top_n, n_ours, n_openai), the most that could be shared; `jaccard`: over their union.
- `overlap_norm_n`, `overlap_norm_frac`: the same up to surrounding whitespace and case
  (" The" matches "the"); counted on each side and the smaller count kept, so it lies between
  `overlap_n` and the denominator.
- `spearman_rho`: Spearman correlation between the two rankings of the exactly shared strings
  (NaN with fewer than 3).

Neurons without a usable file keep NaN (or null) metrics rather than stopping the comparison:
a partial download is still worth comparing.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

log = logging.getLogger("intraneuron")

RELEASE_SUBDIR = Path("related-tokens") / "activation-based"
LAYOUT = "related-tokens/activation-based/{layer}/{neuron}.json"
SEARCH_DEPTH = 6  # how deep below the given directory to look for RELEASE_SUBDIR
MIN_SPEARMAN = 3

COLUMNS = ["layer", "neuron", "found", "status", "top_n", "n_ours", "n_openai", "overlap_n",
           "overlap_frac", "jaccard", "overlap_norm_n", "overlap_norm_frac", "spearman_rho"]


def resolve_directory(directory: str | Path) -> Path:
    """The `activation-based` folder for `directory`: itself, or the one found below it.

    Users point at whatever they downloaded: the folder itself, `related-tokens`, or some mirror
    root holding `.../related-tokens/activation-based`. The search skips digit-named folders
    (layer folders of the release, thousands of files) so it stays cheap.
    """
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"OpenAI comparison directory {root} does not exist or is not a "
                                f"directory; expected {_expected(root)}")
    if root.name == "activation-based":
        return root
    if root.name == "related-tokens" and (root / "activation-based").is_dir():
        return root / "activation-based"
    found: list[Path] = []
    queue = deque([(root, 0)])
    while queue:
        here, depth = queue.popleft()
        if found and depth > len(found[0].relative_to(root).parts) - 2:
            break  # only the shallowest matches compete
        if (here / RELEASE_SUBDIR).is_dir():
            found.append(here / RELEASE_SUBDIR)
            continue
        if depth >= SEARCH_DEPTH:
            continue
        try:
            children = sorted(p for p in here.iterdir()
                              if p.is_dir() and not p.name.isdigit() and not p.name.startswith("."))
        except OSError:
            continue
        queue.extend((child, depth + 1) for child in children)
    if len(found) > 1:
        raise ValueError(f"several {RELEASE_SUBDIR} folders under {root}: "
                         f"{', '.join(map(str, found[:5]))}; point openai_comparison.directory "
                         "at the one to use")
    return found[0] if found else root  # else: maybe the activation-based folder, renamed


def _expected(root: Path) -> str:
    return (f"{root}/{LAYOUT} (or {root}/{{layer}}/{{neuron}}.json when it is the "
            "activation-based folder itself), e.g. .../activation-based/0/123.json with "
            '{"tokens": [...], "average_activations": [...]}')


def read_release_file(path: Path) -> list[str]:
    """Token strings of one release file, best first; ValueError on a malformed file.

    The list is re-sorted by `average_activations` (stable, descending) when that field is
    present, so a file whose order disagrees with its own numbers is still ranked by them.
    """
    with open(path, encoding="utf-8") as fh:
        record = json.load(fh)
    if not isinstance(record, dict) or not isinstance(record.get("tokens"), list):
        raise ValueError("no 'tokens' list")
    tokens = record["tokens"]
    if not all(isinstance(t, str) for t in tokens):
        raise ValueError("'tokens' holds non-strings")
    acts = record.get("average_activations")
    if acts is None:
        return tokens
    if not isinstance(acts, list) or len(acts) != len(tokens):
        raise ValueError(f"'average_activations' is not a list of {len(tokens)} numbers")
    try:
        values = np.array(acts, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("'average_activations' holds non-numbers") from exc
    order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")
    return [tokens[i] for i in order]


def _distinct(tokens) -> list[str]:
    return list(dict.fromkeys(tokens))  # first occurrence = best rank


def normalise(token: str) -> str:
    """Whitespace- and case-insensitive form; whitespace-only tokens stay as they are."""
    return token.strip().casefold() or token


def compare_lists(ours: list[str], theirs: list[str], top_n: int) -> dict:
    """Overlap metrics of two best-first token string lists (see the module docstring)."""
    a, b = _distinct(ours), _distinct(theirs)
    ta, tb = a[:top_n], b[:top_n]
    shared = set(ta) & set(tb)
    union = len(set(ta) | set(tb))
    limit = min(top_n, len(a), len(b))
    na, nb = {normalise(t) for t in ta}, {normalise(t) for t in tb}
    norm_n = min(sum(normalise(t) in nb for t in ta), sum(normalise(t) in na for t in tb))
    rho = math.nan
    if len(shared) >= MIN_SPEARMAN:
        rank_a = {t: i for i, t in enumerate(ta)}
        rank_b = {t: i for i, t in enumerate(tb)}
        keys = sorted(shared, key=rank_a.__getitem__)
        rho = float(spearmanr([rank_a[t] for t in keys], [rank_b[t] for t in keys])[0])
    return {
        "n_ours": len(a), "n_openai": len(b), "overlap_n": len(shared),
        "overlap_frac": len(shared) / limit if limit else math.nan,
        "jaccard": len(shared) / union if union else math.nan,
        "overlap_norm_n": norm_n, "overlap_norm_frac": norm_n / limit if limit else math.nan,
        "spearman_rho": rho,
    }


def compare_with_openai(tokens: pd.DataFrame, directory: str | Path,
                        top_n: int = 100) -> pd.DataFrame:
    """One row per (layer, neuron) of `tokens` (our tokens table: layer, neuron, rank, token).

    Raises when `directory` holds no release file for any of our neurons: that is a wrong path
    or layout, not a partial download, and an all-NaN table would hide it.
    """
    if int(top_n) < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    top_n = int(top_n)
    root = resolve_directory(directory)
    frame = tokens[["layer", "neuron", "rank", "token"]].sort_values(
        ["layer", "neuron", "rank"], kind="stable")
    rows, invalid = [], []
    for (layer, neuron), grp in frame.groupby(["layer", "neuron"], sort=True):
        ours = [str(t) for t in grp["token"]]
        path = root / str(int(layer)) / f"{int(neuron)}.json"
        row = {"layer": int(layer), "neuron": int(neuron), "top_n": top_n,
               "n_ours": len(_distinct(ours))}
        if not path.is_file():
            rows.append({**row, "found": False, "status": "missing"})
            continue
        try:
            theirs = read_release_file(path)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            invalid.append(f"{path}: {exc}")
            rows.append({**row, "found": False, "status": f"invalid: {exc}"})
            continue
        rows.append({**row, "found": True, "status": "ok", **compare_lists(ours, theirs, top_n)})
    out = pd.DataFrame(rows, columns=COLUMNS)
    if len(out) and not (out["status"] != "missing").any():
        layers = sorted(set(out["layer"]))
        raise FileNotFoundError(
            f"no OpenAI related-tokens file for any of our {len(out):,} neurons (layers "
            f"{layers}) in {directory} (searched {root}); expected {_expected(Path(directory))}")
    if invalid:
        log.warning("%d unusable OpenAI files (counted as not found), e.g. %s", len(invalid),
                    "; ".join(invalid[:3]))
    n_found = int(out["found"].sum())
    log.info("OpenAI comparison: %d of %d neurons have a usable file in %s", n_found, len(out),
             root)
    return _typed(out)


def _typed(out: pd.DataFrame) -> pd.DataFrame:
    out["layer"] = out["layer"].astype(np.int16)
    out["neuron"] = out["neuron"].astype(np.int32)
    out["found"] = out["found"].astype(bool)
    out["status"] = out["status"].astype(str)
    out["top_n"] = out["top_n"].astype(np.int32)
    out["n_ours"] = out["n_ours"].astype(np.int32)
    for col in ("n_openai", "overlap_n", "overlap_norm_n"):
        out[col] = out[col].astype("Int32")  # null where there is no file
    for col in ("overlap_frac", "jaccard", "overlap_norm_frac", "spearman_rho"):
        out[col] = out[col].astype(np.float64)
    return out.reset_index(drop=True)
