"""WordNet 3.0 supersenses as a categorical proxy that no embedding shaped.

Every synset of WordNet belongs to one of 45 lexicographer files ("supersenses": noun.animal,
noun.food, verb.motion, adj.all, ...), curated by people. A word's category here is the
supersense of its most frequent sense over all parts of speech: the sense with the highest
count in WordNet's sense-tagged corpus counts (cntlist.rev), or, for a word none of whose
senses was counted, the first-listed (most frequent) sense of the first part of speech it has,
in the order noun, verb, adjective, adverb. Inflected forms are reduced to their lemma by
WordNet's own exception lists and detachment rules (as its `morphy` does). A token's proxy
vector is the indicator of its category, so the cosine of two tokens is 1 when they share it
and 0 otherwise, a segment's homogeneity is its same-category rate, and a token that is not an
English word in WordNet gets the zero vector (similar to nothing; it lowers its neuron's
coverage).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

# lex_filenum -> name, as WordNet 3.0 numbers its lexicographer files
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather",
    "adj.ppl",
)  # fmt: skip
POS_FILES = ("noun", "verb", "adj", "adv")
# WordNet's detachment rules: (suffix, replacement) per part of speech
DETACH = {
    "noun": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
             ("shes", "sh"), ("men", "man"), ("ies", "y")],
    "verb": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""),
             ("ing", "e"), ("ing", "")],
    "adj": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "adv": [],
}  # fmt: skip


class WordNetError(FileNotFoundError):
    """The WordNet files are missing; the message says where they were looked for."""


def _first_sense_lexfiles(directory: Path, pos: str) -> dict[str, int]:
    """lemma -> lex_filenum of its most frequent synset in part of speech `pos`."""
    lexfile: dict[str, int] = {}
    with open(directory / f"data.{pos}", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("  "):  # the licence header
                continue
            offset, filenum = line.split(" ", 2)[:2]
            lexfile[offset] = int(filenum)
    out: dict[str, int] = {}
    with open(directory / f"index.{pos}", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            fields = line.split()
            n_synsets = int(fields[2])
            out[fields[0]] = lexfile[fields[-n_synsets]]
    return out


def _tagged_counts(directory: Path) -> dict[str, tuple[int, int]]:
    """lemma -> (count, lex_filenum) of its most often tagged sense, from cntlist.rev, whose
    sense keys (lemma%ss_type:lex_filenum:...) carry the lexicographer file."""
    out: dict[str, tuple[int, int]] = {}
    path = directory / "cntlist.rev"
    if not path.exists():
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            key, _, count = line.split()
            lemma, rest = key.split("%", 1)
            entry = (int(count), int(rest.split(":")[1]))
            if entry[0] > out.get(lemma, (0, 0))[0]:
                out[lemma] = entry
    return out


def _exceptions(directory: Path, pos: str) -> dict[str, str]:
    path = directory / f"{pos}.exc"
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        return {f[0]: f[1] for f in (line.split() for line in fh) if len(f) >= 2}


@lru_cache(maxsize=4)
def load(directory: str = "/usr/share/wordnet") -> WordNet:
    path = Path(directory)
    missing = [f"{kind}.{pos}" for pos in POS_FILES for kind in ("index", "data")
               if not (path / f"{kind}.{pos}").exists()]  # fmt: skip
    if missing:
        raise WordNetError(
            f"WordNet 3.0 files {', '.join(missing)} not found in {directory}: install Debian's "
            "wordnet-base (apt-get install wordnet-base) or set analysis.wordnet_dir to a "
            "folder holding WordNet's index.* and data.* files")
    return WordNet({pos: _first_sense_lexfiles(path, pos) for pos in POS_FILES},
                   {pos: _exceptions(path, pos) for pos in POS_FILES}, _tagged_counts(path))


class WordNet:
    """Supersenses of English words, lemmatised as WordNet's morphy does."""

    def __init__(self, first_sense: dict[str, dict[str, int]], exceptions: dict[str, dict],
                 tagged: dict[str, tuple[int, int]]):
        self.first_sense = first_sense
        self.exceptions = exceptions
        self.tagged = tagged

    def lemma(self, word: str, pos: str) -> str | None:
        """The word's base form in part of speech `pos`, if WordNet has one."""
        table = self.first_sense[pos]
        if word in table:
            return word
        if word in self.exceptions[pos] and self.exceptions[pos][word] in table:
            return self.exceptions[pos][word]
        for suffix, repl in DETACH[pos]:
            if word.endswith(suffix) and word[: len(word) - len(suffix)] + repl in table:
                return word[: len(word) - len(suffix)] + repl
        return None

    def supersense(self, text: str) -> str | None:
        """The supersense of a token's text (see the module docstring), or None."""
        word = text.strip().lower()
        if not word or not word.replace("-", "").replace("'", "").isalpha():
            return None
        lemmas = [(pos, self.lemma(word, pos)) for pos in POS_FILES]
        lemmas = [(pos, lemma) for pos, lemma in lemmas if lemma is not None]
        if not lemmas:
            return None
        counted = [self.tagged[lemma] for _, lemma in lemmas if lemma in self.tagged]
        if counted:
            return LEXNAMES[max(counted)[1]]
        pos, lemma = lemmas[0]
        return LEXNAMES[self.first_sense[pos][lemma]]

    def matrix(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 45) float32: each row the indicator of its supersense (or zeros)."""
        index = {name: i for i, name in enumerate(LEXNAMES)}
        out = np.zeros((len(texts), len(LEXNAMES)), dtype=np.float32)
        for row, text in enumerate(texts):
            name = self.supersense(text)
            if name is not None:
                out[row, index[name]] = 1.0
        return out
