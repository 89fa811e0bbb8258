"""The labeller's prompts (`prompts.yaml`, versioned) and what they turn a token set into."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

PROMPTS_PATH = Path(__file__).with_name("prompts.yaml")


@dataclass(frozen=True)
class Prompts:
    version: int
    digest: str  # sha256 of the file's text: an edit that forgets the version still misses
    label: dict
    categorize: dict

    @property
    def key(self) -> str:
        """What names these prompts in cache keys and provenance."""
        return f"v{self.version}-{self.digest[:12]}"

    def label_prompt(self, tokens: list[str]) -> str:
        """The few-shot completion prompt asking for one category name of `tokens`."""
        spec = self.label
        shots = [spec["template"].format(tokens=e["tokens"]) + " " + e["label"]
                 for e in spec["examples"]]
        return spec["separator"].join([*shots, spec["template"].format(tokens=", ".join(tokens))])

    def categorize_prefix(self) -> str:
        """The shared few-shot prefix of every closed-list question (scored once)."""
        spec = self.categorize
        return "".join(spec["template"].format(token=e["token"]) + " " + e["category"]
                       + spec["separator"] for e in spec["examples"])

    def categorize_question(self, token: str) -> str:
        return self.categorize["template"].format(token=token)

    @property
    def categories(self) -> list[str]:
        return list(self.categorize["categories"])


def load_prompts(path: str | Path = PROMPTS_PATH) -> Prompts:
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    missing = [k for k in ("version", "label", "categorize") if k not in data]
    if missing:
        raise ValueError(f"prompts file {path}: missing keys {missing}")
    cats = data["categorize"]["categories"]
    if len(set(cats)) != len(cats) or "other" not in cats:
        raise ValueError(f"prompts file {path}: categorize.categories must be distinct and "
                         "include 'other' (the answer for a token that fits none)")
    return Prompts(int(data["version"]), hashlib.sha256(text.encode()).hexdigest(),
                   data["label"], data["categorize"])


@cache
def default_prompts() -> Prompts:
    return load_prompts()
