"""Corpus stage: read documents, tokenize them into model-ready windows, store them as Parquet.

Every later stage reads the same token windows, so this module fixes three things once:
document order (always deterministic), window layout (documents tokenized separately, joined by
a separator token, cut into fixed-size windows, then wrapped with the model's own special
tokens) and a content hash that lets later stages detect a changed corpus.

Bad input raises :class:`CorpusError` whose message names the problem and how to fix it,
because a corpus mistake is otherwise discovered only hours later as odd statistics.
"""

from __future__ import annotations

import codecs
import functools
import glob
import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .config import MIN_SEGMENTS, load_schema
from .h5io import atomic_path, written_by

__all__ = [
    "SOURCES",
    "CorpusError",
    "check_vocabulary",
    "corpus_files",
    "corpus_hash",
    "describe_source",
    "file_record",
    "iter_documents",
    "read_tokens",
    "tokenize_corpus",
    "write_tokens",
]

SOURCES = ("text", "jsonl", "parquet", "huggingface", "wordnet")

WORDNET_DEFAULT_PATH = "/usr/share/wordnet"
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")

METADATA_KEY = b"intraneuron.corpus"
DOC_BATCH = 64  # documents per tokenizer call: amortizes the call, bounds over-reading
# Text handed to the tokenizer at once. A fast tokenizer holds ~170 bytes per character while
# encoding, so these bound its memory (~50 MB) whatever the size of the largest document.
PIECE_CHARS = 1 << 15
BATCH_CHARS = 1 << 18
MIN_TYPES = MIN_SEGMENTS  # the fewest core tokens any valid config asks for
MAX_UNKNOWN_SHARE = 0.5
_HASH_TAG = b"intraneuron-corpus-v1"


class CorpusError(ValueError):
    """Corpus input that cannot be used; the message says what is wrong and how to fix it."""


# --------------------------------------------------------------------------- documents


@functools.lru_cache(maxsize=1)
def _schema_defaults() -> dict[str, Any]:
    """The corpus section's defaults, read from the config schema (their only home)."""
    props = load_schema()["properties"]["corpus"]["properties"]
    return {key: spec["default"] for key, spec in props.items() if "default" in spec}


def _settings(cfg: dict) -> dict[str, Any]:
    merged = {**_schema_defaults(), **cfg}
    source = merged.get("source")
    if source not in SOURCES:
        raise CorpusError(
            f"corpus.source {source!r} is not supported; set corpus.source to one of {list(SOURCES)}"
        )
    if source == "wordnet" and merged["path"] is None:
        merged["path"] = WORDNET_DEFAULT_PATH
    if source in ("text", "jsonl", "parquet") and not merged["path"]:
        raise CorpusError(
            f"corpus.path is required for corpus.source {source!r}; set it to a file or glob"
        )
    if source == "huggingface" and not merged["dataset"]:
        raise CorpusError(
            "corpus.dataset is required for corpus.source 'huggingface'; "
            "set it to a Hub dataset name such as 'wikitext'"
        )
    limit = merged["max_documents"]
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise CorpusError(
            f"corpus.max_documents must be a positive integer or null, got {limit!r}"
        )
    return merged


def describe_source(cfg: dict) -> str:
    """One-line description of where documents come from, for the tokens file metadata."""
    s = _settings(cfg)
    source = s["source"]
    if source == "huggingface":
        name = s["dataset"] + (f"/{s['dataset_config']}" if s["dataset_config"] else "")
        desc = f"huggingface:{name}:{s['split']}[{s['text_field']}]"
    elif source in ("jsonl", "parquet"):
        desc = f"{source}:{s['path']}[{s['text_field']}]"
    elif source == "text":
        desc = f"text:{s['path']}" + (" (paragraphs)" if s["split_paragraphs"] else "")
    else:
        desc = f"wordnet:{s['path']}"
    if s["max_documents"] is not None:
        desc += f" max_documents={s['max_documents']}"
    return desc


def corpus_files(cfg: dict) -> list[str]:
    """The existing files the corpus is read from, in reading order ([] for a Hub dataset).

    The workflow declares them as inputs of the corpus job, so editing a file or adding one to
    the glob reruns it; missing files are left to the reader, whose error says how to fix them.
    """
    s = _settings(cfg)
    if s["source"] == "huggingface":
        return []
    if s["source"] == "wordnet":
        return [str(Path(s["path"]) / f) for f in WORDNET_FILES
                if (Path(s["path"]) / f).is_file()]
    return _matching(s["path"])


def _matching(pattern: str) -> list[str]:
    """An existing file is itself (its name may hold glob characters); otherwise a glob."""
    path = os.path.expanduser(pattern)
    if os.path.isfile(path):
        return [path]
    return sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))


def file_record(path: str) -> dict[str, Any]:
    """Name, size and SHA-256 of a corpus file, for the provenance of the tokens file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": path, "bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def iter_documents(cfg: dict, read: list | None = None) -> Iterator[tuple[int, str]]:
    """Yield ``(doc_id, text)`` in a fixed order; doc ids count the yielded documents from 0.

    Blank documents are skipped (they carry no tokens) and outer whitespace is stripped.
    Files are visited in sorted order so that the same configuration always gives the same
    corpus. Settings are checked on the call; file problems surface while iterating. Each file
    opened is appended to ``read`` (see :func:`file_record`), so the provenance lists exactly
    the files that were read.
    """
    s = _settings(cfg)
    s["note"] = (lambda path: read.append(file_record(path))) if read is not None else _ignore
    readers = {
        "text": _text_documents,
        "jsonl": _jsonl_documents,
        "parquet": _parquet_documents,
        "huggingface": _hf_documents,
        "wordnet": _wordnet_documents,
    }
    texts = (t.strip() for t in readers[s["source"]](s))
    texts = (t for t in texts if t)
    return enumerate(itertools.islice(texts, s["max_documents"]))


def _ignore(_path: str) -> None:
    return None


def _files(pattern: str, what: str, note: Callable[[str], None]) -> Iterator[str]:
    files = _matching(pattern)
    if not files:
        raise CorpusError(
            f"corpus.path {pattern!r} matches no file (working directory {os.getcwd()}); "
            f"set corpus.path to an existing {what} file or a glob such as 'data/*.{what}'"
        )
    for name in files:
        note(name)
        yield name


# Byte-order marks of the encodings a text editor saves besides UTF-8 (UTF-32 first: its
# little-endian mark begins with UTF-16's).
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _decode(data: bytes, name: str, offset: int = 0) -> str:
    """A file's text: UTF-8, or UTF-16/32 announced by a byte-order mark (NUL bytes there are
    part of the encoding, not a sign of a binary file)."""
    if offset == 0:
        for bom, encoding in BOMS:
            if data.startswith(bom):
                return _decode_marked(data, name, encoding)
    nul = data.find(b"\x00")
    if nul >= 0:  # valid UTF-8, but no text file holds NUL: an archive or other binary file
        raise CorpusError(
            f"{name} looks binary (NUL byte at byte offset {offset + nul}), not text: "
            "remove it from corpus.path or narrow the glob to the text files"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{name} is not UTF-8: invalid byte 0x{data[err.start]:02x} at byte offset "
            f"{offset + err.start}; re-encode the file as UTF-8 (e.g. iconv -t UTF-8) "
            "or remove it from corpus.path"
        ) from None


def _decode_marked(data: bytes, name: str, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{name} starts with a {encoding.upper()} byte-order mark but is not valid "
            f"{encoding.upper()} (byte offset {err.start}); re-encode it as UTF-8 "
            f"(e.g. iconv -f {encoding.upper()} -t UTF-8) or remove it from corpus.path"
        ) from None


def _require_content(data: bytes, name: str) -> None:
    if not data.strip():
        raise CorpusError(
            f"{name} is empty or only whitespace; remove it or exclude it from corpus.path"
        )


def _text_documents(s: dict) -> Iterator[str]:
    for name in _files(s["path"], "txt", s["note"]):
        data = Path(name).read_bytes()
        _require_content(data, name)
        text = _decode(data, name).removeprefix("\ufeff")
        if s["split_paragraphs"]:
            yield from re.split(r"\n\s*\n", text)
        else:
            yield text


def _jsonl_documents(s: dict) -> Iterator[str]:
    field = s["text_field"]
    for name in _files(s["path"], "jsonl", s["note"]):
        seen_content = False
        offset = 0
        with open(name, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = _decode(raw, name, offset)
                offset += len(raw)
                if not line.strip():
                    continue
                seen_content = True
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise CorpusError(
                        f"{name}:{lineno} is not valid JSON ({err.msg}); "
                        "fix the line or remove it (JSONL needs one JSON object per line)"
                    ) from None
                yield _field(record, field, f"{name}:{lineno}")
        if not seen_content:
            _require_content(b"", name)


def _field(record: Any, field: str, where: str) -> str:
    if not isinstance(record, dict) or field not in record:
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise CorpusError(
            f"{where} has no text field {field!r} (found {keys}); "
            "set corpus.text_field to the field holding the text"
        )
    value = record[field]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CorpusError(
            f"{where} field {field!r} is {type(value).__name__}, not a string; "
            "set corpus.text_field to a field holding text"
        )
    return value


def _parquet_documents(s: dict) -> Iterator[str]:
    field = s["text_field"]
    for name in _files(s["path"], "parquet", s["note"]):
        try:
            pf = pq.ParquetFile(name)
        except (pa.ArrowException, OSError) as err:
            raise CorpusError(
                f"{name} cannot be read as Parquet ({err}); fix or remove it from corpus.path"
            ) from None
        columns = pf.schema_arrow.names
        if field not in columns:
            raise CorpusError(
                f"{name} has no column {field!r} (columns: {columns}); "
                "set corpus.text_field to the column holding the text"
            )
        kind = pf.schema_arrow.field(field).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise CorpusError(
                f"{name} column {field!r} has type {kind}, not string; "
                "set corpus.text_field to a text column"
            )
        for batch in pf.iter_batches(columns=[field], batch_size=1024):
            yield from (t or "" for t in batch.column(0).to_pylist())


def _hf_documents(s: dict) -> Iterator[str]:
    name = s["dataset"]
    try:
        import datasets
    except ImportError:
        raise CorpusError(
            "corpus.source 'huggingface' needs the 'datasets' package, which is not installed; "
            "pip install datasets, or use a local source (text, jsonl, parquet, wordnet)"
        ) from None
    offline = _offline_flag(datasets)
    if offline:
        raise CorpusError(
            f"corpus.source 'huggingface' streams {name!r} from the Hub, but {offline}=1 "
            f"forbids network access; unset {offline} and go online, "
            "or use a local source (text, jsonl, parquet, wordnet)"
        )
    try:
        ds = datasets.load_dataset(name, s["dataset_config"], split=s["split"], streaming=True)
        rows = iter(ds)
        first = next(rows, None)
    except Exception as err:  # network, auth and name errors all end the same way here
        raise CorpusError(
            f"cannot stream Hugging Face dataset {name!r} (config {s['dataset_config']!r}, "
            f"split {s['split']!r}): {type(err).__name__}: {err}; check the name and that the "
            "Hub is reachable, or use a local source (text, jsonl, parquet, wordnet)"
        ) from err
    if first is None:
        return
    for i, row in enumerate(itertools.chain([first], rows)):
        yield _field(row, s["text_field"], f"{name} row {i}")


def _offline_flag(datasets) -> str | None:
    """Which offline switch is on, as the Hub and datasets libraries themselves read it."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE"
    if getattr(getattr(datasets, "config", None), "HF_DATASETS_OFFLINE", False):
        return "HF_DATASETS_OFFLINE"
    return None


def _wordnet_documents(s: dict) -> Iterator[str]:
    """Glosses of WordNet 3.0 synsets: short human-written definitions with example usage."""
    root = Path(s["path"])
    missing = [f for f in WORDNET_FILES if not (root / f).is_file()]
    if missing:
        raise CorpusError(
            f"corpus.path {str(root)!r} lacks WordNet data files {missing}; "
            "apt-get install wordnet-base, or set corpus.path to a directory holding "
            f"{list(WORDNET_FILES)}"
        )
    for fname in WORDNET_FILES:
        path = root / fname
        s["note"](str(path))
        text = _decode(path.read_bytes(), str(path))
        for line in text.split("\n"):
            if line.startswith("  "):  # license header
                continue
            _, bar, gloss = line.partition(" | ")
            if bar:
                yield gloss


# --------------------------------------------------------------------------- tokenization


def _wrapper(tokenizer) -> tuple[list[int], list[int]]:
    """Special tokens the tokenizer puts before and after a single sequence.

    Read off a probe encoding rather than ``build_inputs_with_special_tokens``, which fast
    tokenizers no longer have in transformers 5; the probe works in every version.
    """
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1) if bare else ():
        if full[start:start + len(bare)] == bare:
            return list(full[:start]), list(full[start + len(bare):])
    raise CorpusError(
        f"cannot tell which special tokens {getattr(tokenizer, 'name_or_path', tokenizer)!r} "
        "adds around a sequence; use a tokenizer whose special tokens only wrap the input"
    )


def _separator(tokenizer) -> int | None:
    for attr in ("eos_token_id", "sep_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    return None


def _check_sizes(window_tokens: int, max_tokens: int | None, n_special: int, tokenizer) -> None:
    if isinstance(window_tokens, bool) or not isinstance(window_tokens, int) or window_tokens < 1:
        raise CorpusError(f"window_tokens must be a positive integer, got {window_tokens!r}")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise CorpusError(f"max_tokens must be a positive integer or null, got {max_tokens!r}")
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and limit < 10**7 and window_tokens + n_special > limit:
        raise CorpusError(
            f"window_tokens={window_tokens} plus {n_special} special tokens exceeds the model's "
            f"maximum input length {limit}; set window_tokens to at most {limit - n_special}"
        )


def tokenize_corpus(
    docs: Iterable[tuple[int, str]],
    tokenizer,
    window_tokens: int,
    max_tokens: int | None = None,
) -> pa.Table:
    """Cut the token stream of ``docs`` into model-ready windows.

    Each document is tokenized on its own (so no token spans two documents); the streams are
    joined with the tokenizer's EOS (else SEP) token, cut into windows of ``window_tokens``
    stream tokens (separators included; the last window may be shorter) and every window is
    wrapped in the special tokens the model expects. ``max_tokens`` caps the stream length
    exactly, and tokenizing stops with the batch that reaches it: long documents are handed to
    the tokenizer in pieces (:func:`_pieces`), so memory is bounded by ``BATCH_CHARS`` rather
    than by the largest document. Special tokens and separators get doc id -1. Summary
    statistics are stored in the schema metadata.

    Text is text: a document that contains a special token's text (``<|endoftext|>``) is
    tokenised as those characters, never as the control token, which would pose as the
    document separator. How often each special token's text occurred is counted and recorded
    (``special_token_text`` in the metadata) for the corpus stage to report.
    """
    prefix, suffix = _wrapper(tokenizer)
    _check_sizes(window_tokens, max_tokens, len(prefix) + len(suffix), tokenizer)
    cap = max_tokens if max_tokens is not None else np.iinfo(np.int64).max
    stream = _Stream(cap, _separator(tokenizer))
    seen: set[int] = set()
    found: dict[str, int] = {}
    specials = [t for t in getattr(tokenizer, "all_special_tokens", []) if t]
    for batch in _batches(_doc_pieces(docs, seen)):
        texts = [text for _, text in batch]
        for token in specials:
            found[token] = found.get(token, 0) + sum(text.count(token) for text in texts)
        encoded = tokenizer(
            texts,
            add_special_tokens=False,
            split_special_tokens=True,
            return_attention_mask=False,
            verbose=False,
        )["input_ids"]
        for (doc_id, _), ids in zip(batch, encoded, strict=True):
            stream.add(doc_id, ids)
        if stream.full:
            break
    if stream.length == 0:
        raise CorpusError(
            f"the corpus yielded no tokens ({len(seen)} documents read); check corpus.path, "
            "corpus.text_field and corpus.max_documents point at non-empty text"
        )
    ids, doc_ids = stream.arrays()
    table = _windows(ids, doc_ids, window_tokens, prefix, suffix, tokenizer, max_tokens)
    stats = json.loads(table.schema.metadata[METADATA_KEY])
    stats["special_token_text"] = {token: n for token, n in sorted(found.items()) if n}
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(stats).encode()})


def _doc_pieces(docs: Iterable[tuple[int, str]], seen: set[int]) -> Iterator[tuple[int, str]]:
    for doc_id, text in docs:
        seen.add(doc_id)
        for piece in _pieces(text):
            yield doc_id, piece


_CUT = re.compile(r"(?<=\S)\s")


def _pieces(text: str) -> Iterator[str]:
    """``text`` in pieces of at most ``PIECE_CHARS`` characters that join back to it.

    Each cut falls just before a whitespace run, which byte-level BPE (GPT-2) and WordPiece
    (BERT) pre-tokenizers split at anyway, so the pieces give the ids of the whole text. Only a
    run of ``PIECE_CHARS`` characters without whitespace is cut inside a word.
    """
    start = 0
    while len(text) - start > PIECE_CHARS:
        stop = start + PIECE_CHARS
        cuts = [m.start() for m in _CUT.finditer(text, start + 1, stop + 1)]
        cut = cuts[-1] if cuts else stop
        yield text[start:cut]
        start = cut
    yield text[start:]


def _batches(pieces: Iterator[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    """Groups of at most DOC_BATCH pieces and (the last piece aside) BATCH_CHARS characters,
    pulled lazily so nothing past the batch that reaches the cap is read."""
    while True:
        batch, chars = [], 0
        while len(batch) < DOC_BATCH and chars < BATCH_CHARS:
            item = next(pieces, None)
            if item is None:
                break
            batch.append(item)
            chars += len(item[1])
        if not batch:
            return
        yield batch


class _Stream:
    """The corpus token stream: documents joined by the separator, truncated at ``cap``."""

    def __init__(self, cap: int, sep: int | None):
        self.cap, self.sep = cap, sep
        self.length = 0
        self._last_doc: int | None = None
        self._ids: list[np.ndarray] = []
        self._docs: list[np.ndarray] = []

    @property
    def full(self) -> bool:
        return self.length >= self.cap

    def add(self, doc_id: int, ids: list[int]) -> None:
        if not ids or self.full:
            return
        if self.length and doc_id != self._last_doc and self.sep is not None:
            self._append([self.sep], -1)
        self._last_doc = doc_id
        self._append(ids[: max(self.cap - self.length, 0)], doc_id)

    def _append(self, ids: list[int], doc_id: int) -> None:
        self._ids.append(np.asarray(ids, dtype=np.int32))
        self._docs.append(np.full(len(ids), doc_id, dtype=np.int32))
        self.length += len(ids)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self._ids)[: self.cap], np.concatenate(self._docs)[: self.cap]


def check_vocabulary(table: pa.Table, tokenizer, k: int | None = None, min_count: int = 1,
                     excluded: Iterable[int] = ()) -> dict[str, Any]:
    """Share of unknown tokens and number of distinct token types, checked before extraction.

    A corpus the tokenizer cannot read (mostly [UNK]), one word repeated, or one with fewer than
    ``k`` token types occurring ``min_count`` times (the core-token rule, with the same counts
    and ``excluded`` ids) yields no core tokens; saying so here saves the forward pass that
    would otherwise end in "use a larger corpus".
    """
    ids = pc.list_flatten(table.column("input_ids")).to_numpy()
    docs = pc.list_flatten(table.column("doc_ids")).to_numpy()
    content = ids[docs >= 0]
    unk = getattr(tokenizer, "unk_token_id", None)
    unknown = content == unk if unk is not None else np.zeros(len(content), dtype=bool)
    share = float(unknown.mean()) if len(content) else 0.0
    n_types = int(len(np.unique(content[~unknown])))
    unk_name = getattr(tokenizer, "unk_token", unk)
    if share > MAX_UNKNOWN_SHARE:
        raise CorpusError(
            f"{share:.1%} of the corpus tokens are the tokenizer's unknown token {unk_name} "
            f"({n_types} other distinct token types in {len(content)} tokens): the model's "
            "tokenizer cannot read this text (another language, script or encoding?); use text "
            "in a language the model was trained on"
        )
    if n_types < MIN_TYPES:
        raise CorpusError(
            f"the corpus has only {n_types} distinct token {'type' if n_types == 1 else 'types'} "
            f"(at least {MIN_TYPES} needed, and core_tokens.k of them must each occur "
            "core_tokens.min_count times): is it one word repeated? use a larger, varied corpus"
        )
    types, counts = np.unique(ids, return_counts=True)  # every position, as extraction counts
    eligible = int(((counts >= min_count) & ~np.isin(types, list(excluded))).sum())
    if k is not None and eligible < k:
        raise CorpusError(
            f"only {eligible} token types pass min_count={min_count} (and the special-token "
            f"filter), fewer than core_tokens.k={k}, in a corpus of {len(content)} tokens with "
            f"{n_types} distinct types and {share:.1%} unknown tokens ({unk_name}): use a larger "
            "or more varied corpus (corpus.path, corpus.max_tokens), or lower core_tokens.k or "
            "core_tokens.min_count"
        )
    return {"unknown_share": share, "n_types": n_types}


def _windows(stream, stream_docs, window_tokens, prefix, suffix, tokenizer, max_tokens):
    starts = np.arange(0, len(stream), window_tokens)
    pre = np.asarray(prefix, dtype=np.int32)
    suf = np.asarray(suffix, dtype=np.int32)
    pre_doc = np.full(len(prefix), -1, dtype=np.int32)
    suf_doc = np.full(len(suffix), -1, dtype=np.int32)
    ids_rows, doc_rows = [], []
    for start in starts:
        stop = start + window_tokens
        ids_rows.append(np.concatenate([pre, stream[start:stop], suf]))
        doc_rows.append(np.concatenate([pre_doc, stream_docs[start:stop], suf_doc]))
    lengths = np.array([len(r) for r in ids_rows], dtype=np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    table = pa.table({
        "window": pa.array(np.arange(len(starts), dtype=np.int32)),
        "input_ids": pa.ListArray.from_arrays(offsets, pa.array(np.concatenate(ids_rows))),
        "doc_ids": pa.ListArray.from_arrays(offsets, pa.array(np.concatenate(doc_rows))),
        "n_tokens": pa.array(lengths),
    })
    stats = {
        "tokenizer": str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__),
        "window_tokens": int(window_tokens),
        "max_tokens": None if max_tokens is None else int(max_tokens),
        "n_windows": int(len(starts)),
        "n_tokens": int(lengths.sum()),
        "n_documents": int(len(np.unique(stream_docs[stream_docs >= 0]))),
        "corpus_hash": corpus_hash(table),
    }
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(stats).encode()})


def report_special_token_text(table: pa.Table, log) -> dict[str, int]:
    """Warn (in the corpus stage's log and on stderr) about special-token text found in the
    documents: it was tokenised as text, but a corpus that holds it may hold other markup."""
    found = json.loads(table.schema.metadata[METADATA_KEY]).get("special_token_text", {})
    for token, n in found.items():
        log.warning("the corpus contains the text %r %d times: tokenised as text, not as the "
                    "special token (the tokens.parquet metadata records the counts)", token, n)
    return found


def corpus_hash(table: pa.Table) -> str:
    """SHA-256 over window lengths, token ids and doc ids: equal exactly when the windows are."""
    digest = hashlib.sha256(_HASH_TAG)
    for column in ("n_tokens", "input_ids", "doc_ids"):
        values = table.column(column)
        if column != "n_tokens":
            values = pc.list_flatten(values)
        arr = np.asarray(values.to_numpy(), dtype="<i4")
        digest.update(len(arr).to_bytes(8, "little"))
        digest.update(arr.tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- storage


def write_tokens(table: pa.Table, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``table`` to Parquet with ``metadata`` merged over its own statistics.

    Written to a temporary file in the target directory and renamed into place, so a crash
    never leaves a half-written file that a rerun would take as finished output.
    """
    path = Path(path)
    meta = {}
    if table.schema.metadata and METADATA_KEY in table.schema.metadata:
        meta = json.loads(table.schema.metadata[METADATA_KEY])
    meta.update({**(metadata or {}), **written_by()})
    blob = json.dumps(meta, sort_keys=True).encode()
    table = table.replace_schema_metadata({METADATA_KEY: blob})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_tokens(path: str | os.PathLike) -> tuple[pa.Table, dict]:
    """Read a file written by :func:`write_tokens`; returns the table and its metadata."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise CorpusError(
            f"{path} has no corpus metadata, so it was not written by the corpus stage; "
            "delete it and rerun the corpus stage"
        )
    return table, json.loads(raw)
