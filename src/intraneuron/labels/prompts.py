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

    @property
    def categories(self) -> list[str]:
        """The closed list a token is sorted into (`analysis.proxy: llm`)."""
        return list(self.categorize["categories"])

    def categorize_prefix(self) -> str:
        """The examples, shared by every token's question (computed once by the scorer)."""
        spec = self.categorize
        return spec["separator"].join(spec["template"].format(token=e["token"]) + " "
                                      + e["category"] for e in spec["examples"])

    def categorize_question(self, token: str) -> str:
        """What follows the prefix for one token; each category's name completes it."""
        spec = self.categorize
        return spec["separator"] + spec["template"].format(token=token)


def load_prompts(path: str | Path = PROMPTS_PATH) -> Prompts:
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    missing = [k for k in ("version", "label", "categorize") if k not in data]
    if missing:
        raise ValueError(f"prompts file {path}: missing keys {missing}")
    categories = data["categorize"].get("categories") or []
    unknown = [e["category"] for e in data["categorize"].get("examples", [])
               if e["category"] not in categories]
    if len(set(categories)) != len(categories) or unknown or len(categories) < 2:
        raise ValueError(f"prompts file {path}: categorize.categories must list at least two "
                         f"distinct names and every example's category (not listed: {unknown})")
    return Prompts(int(data["version"]), hashlib.sha256(text.encode()).hexdigest(),
                   data["label"], data["categorize"])


@cache
def default_prompts() -> Prompts:
    return load_prompts()
