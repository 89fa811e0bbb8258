"""What the run found, in words generated from the verdict tables (never written by hand).

Per claim: for each model in the paper's setting, each level's verdicts with the layers that got
them. Verdict strings are taken as they are (the claim machinery may add new ones, such as "not
identifiable with this proxy"), grouped, and ordered by first layer. A pretrained model's
supported verdict that its random-weights twin shares is marked, since it needs no learning.
"""

from __future__ import annotations

import pandas as pd

from .pages import twin

LEVELS = (("verdict_exists", "exists"), ("verdict_beyond_geometry", "beyond geometry"))


def _layers(layers: list[int]) -> str:
    return ("layer " if len(layers) == 1 else "layers ") + ", ".join(map(str, layers))


def _level(claims: pd.DataFrame, col: str, shared: set[int]) -> str:
    """'supported (layers 0, 3), not supported (layer 5)' for one claim and level."""
    groups: dict[str, list[int]] = {}
    for layer, verdict in sorted(zip(claims["layer"].astype(int), claims[col].astype(str),
                                     strict=True)):
        groups.setdefault(verdict, []).append(layer)
    parts = []
    for verdict, layers in groups.items():
        mark = [x for x in layers if x in shared]
        note = f"; also with random weights at {_layers(mark)}" if mark else ""
        parts.append(f"{verdict} ({_layers(layers)}{note})")
    return ", ".join(parts)


def _shared(mine: pd.DataFrame, other: pd.DataFrame | None, col: str) -> set[int]:
    """Layers where both this model and its random-weights twin are 'supported' at a level."""
    if other is None or other.empty:
        return set()
    theirs = set(other.loc[other[col].astype(str) == "supported", "layer"].astype(int))
    return {int(x) for x in mine.loc[mine[col].astype(str) == "supported", "layer"]} & theirs


def model_line(name: str, claims: pd.DataFrame, twin_claims: pd.DataFrame | None,
               random: bool) -> dict:
    """One model's verdicts on one claim, at both levels."""
    levels = [(label, _level(claims, col, set() if random else _shared(claims, twin_claims, col)))
              for col, label in LEVELS if col in claims]
    return {"model": name, "control": random, "levels": levels}


def findings(paper_claims: dict[str, pd.DataFrame], models: dict) -> list[dict]:
    """Per claim (in order): its text and each model's line; `paper_claims` maps a model to its
    claims table in the paper's setting."""
    frames = [f for f in paper_claims.values() if f is not None and len(f)]
    if not frames:
        return []
    texts = pd.concat(frames).drop_duplicates("claim").set_index("claim")["claim_text"]
    out = []
    for claim in sorted(int(c) for c in texts.index):
        lines = []
        for name, frame in paper_claims.items():
            mine = frame[frame["claim"] == claim] if frame is not None and len(frame) else None
            if mine is None or mine.empty:
                continue
            other = twin(name, models)
            twin_frame = paper_claims.get(other) if other else None
            twin_mine = (twin_frame[twin_frame["claim"] == claim]
                         if twin_frame is not None and len(twin_frame) else None)
            random = models.get(name, {}).get("weights") == "random"
            lines.append(model_line(name, mine, twin_mine, random))
        out.append({"claim": claim, "text": texts[claim], "lines": lines})
    return out
