"""Corpus stage: read documents, tokenize them into model-ready windows, store them as Parquet.

Every later stage reads the same token windows, so this module fixes three things once:
document order (always deterministic), window layout (documents tokenized separately, joined by
a separator token, cut into fixed-size windows, then wrapped with the model's own special
tokens) and a content hash that lets later stages detect a changed corpus.

Bad input raises :class:`CorpusError` whose message names the problem and how to fix it,
because a corpus mistake is otherwise discovered only hours later as odd statistics.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "CONFIG_DEFAULTS",
    "SOURCES",
    "CorpusError",
    "corpus_hash",
    "describe_source",
    "iter_documents",
    "read_tokens",
    "tokenize_corpus",
    "write_tokens",
]

SOURCES = ("text", "jsonl", "parquet", "huggingface", "wordnet")

CONFIG_DEFAULTS: dict[str, Any] = {
    "path": None,
    "split_paragraphs": False,
    "text_field": "text",
    "dataset": None,
    "dataset_config": None,
    "split": "train",
    "max_documents": None,
}
WORDNET_DEFAULT_PATH = "/usr/share/wordnet"
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")

METADATA_KEY = b"intraneuron.corpus"
DOC_BATCH = 64  # documents per tokenizer call: amortizes the call, bounds over-reading
_HASH_TAG = b"intraneuron-corpus-v1"
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


class CorpusError(ValueError):
    """Corpus input that cannot be used; the message says what is wrong and how to fix it."""


# --------------------------------------------------------------------------- documents


def _settings(cfg: dict) -> dict[str, Any]:
    merged = {**CONFIG_DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
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


def iter_documents(cfg: dict) -> Iterator[tuple[int, str]]:
    """Yield ``(doc_id, text)`` in a fixed order; doc ids count the yielded documents from 0.

    Blank documents are skipped (they carry no tokens) and outer whitespace is stripped.
    Files are visited in sorted order so that the same configuration always gives the same
    corpus. Settings are checked on the call; file problems surface while iterating.
    """
    s = _settings(cfg)
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


def _files(pattern: str, what: str) -> list[str]:
    files = sorted(p for p in glob.glob(os.path.expanduser(pattern), recursive=True)
                   if os.path.isfile(p))
    if not files:
        raise CorpusError(
            f"corpus.path {pattern!r} matches no file (working directory {os.getcwd()}); "
            f"set corpus.path to an existing {what} file or a glob such as 'data/*.{what}'"
        )
    return files


def _decode(data: bytes, name: str, offset: int = 0) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{name} is not UTF-8: invalid byte 0x{data[err.start]:02x} at byte offset "
            f"{offset + err.start}; re-encode the file as UTF-8 (e.g. iconv -t UTF-8) "
            "or remove it from corpus.path"
        ) from None


def _require_content(data: bytes, name: str) -> None:
    if not data.strip():
        raise CorpusError(
            f"{name} is empty or only whitespace; remove it or exclude it from corpus.path"
        )


def _text_documents(s: dict) -> Iterator[str]:
    for name in _files(s["path"], "txt"):
        data = Path(name).read_bytes()
        _require_content(data, name)
        text = _decode(data, name).removeprefix("\ufeff")
        if s["split_paragraphs"]:
            yield from re.split(r"\n\s*\n", text)
        else:
            yield text


def _jsonl_documents(s: dict) -> Iterator[str]:
    field = s["text_field"]
    for name in _files(s["path"], "jsonl"):
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
    for name in _files(s["path"], "parquet"):
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
    offline = [v for v in _OFFLINE_VARS
               if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")]
    if offline:
        raise CorpusError(
            f"corpus.source 'huggingface' streams {name!r} from the Hub, but {offline[0]}=1 "
            f"forbids network access; unset {offline[0]} and go online, "
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
    exactly; documents after the cap are not read beyond the current batch. Special tokens and
    separators get doc id -1. Summary statistics are stored in the schema metadata.
    """
    prefix, suffix = _wrapper(tokenizer)
    _check_sizes(window_tokens, max_tokens, len(prefix) + len(suffix), tokenizer)
    sep = _separator(tokenizer)
    cap = max_tokens if max_tokens is not None else np.iinfo(np.int64).max

    ids_parts: list[np.ndarray] = []
    doc_parts: list[np.ndarray] = []
    length = 0
    n_read = 0
    it = iter(docs)
    while length < cap:
        batch = list(itertools.islice(it, DOC_BATCH))
        if not batch:
            break
        n_read += len(batch)
        encoded = tokenizer(
            [text for _, text in batch],
            add_special_tokens=False,
            return_attention_mask=False,
            verbose=False,
        )["input_ids"]
        for (doc_id, _), ids in zip(batch, encoded, strict=True):
            if not ids or length >= cap:
                continue
            if length and sep is not None:
                ids_parts.append(np.array([sep], dtype=np.int32))
                doc_parts.append(np.array([-1], dtype=np.int32))
                length += 1
            ids = np.asarray(ids[: max(cap - length, 0)], dtype=np.int32)
            ids_parts.append(ids)
            doc_parts.append(np.full(len(ids), doc_id, dtype=np.int32))
            length += len(ids)

    if length == 0:
        raise CorpusError(
            f"the corpus yielded no tokens ({n_read} documents read); check corpus.path, "
            "corpus.text_field and corpus.max_documents point at non-empty text"
        )
    stream = np.concatenate(ids_parts)[:cap]
    stream_docs = np.concatenate(doc_parts)[:cap]
    return _windows(stream, stream_docs, window_tokens, prefix, suffix, tokenizer, max_tokens)


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
    meta.update(metadata or {})
    blob = json.dumps(meta, sort_keys=True).encode()
    table = table.replace_schema_metadata({METADATA_KEY: blob})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
