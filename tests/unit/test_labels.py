"""The labeller: prompts, answers that are or are not labels, the answer cache, retries of an
OpenAI-compatible endpoint, and whether a neuron's cluster labels are distinct. The local
backend is the real SmolLM2-135M-Instruct."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
import torch

from intraneuron.config import ConfigError, validate
from intraneuron.labels import (
    AnswerCache,
    LabelError,
    LocalBackend,
    OpenAIBackend,
    default_prompts,
    distinct_layers,
    distinctness,
    label_model,
    load_prompts,
    parse_label,
)
from intraneuron.labels.prompts import PROMPTS_PATH
from intraneuron.labels.stage import label_table, token_sets

ANIMALS = ["dog", "cat", "horse", "cow", "sheep"]
MORE_ANIMALS = ["goat", "pig", "donkey", "rabbit", "mouse"]
COLOURS = ["red", "blue", "green", "yellow", "purple"]


@pytest.fixture(scope="module")
def local(smollm2_instruct):
    torch.set_num_threads(1)
    return LocalBackend(str(smollm2_instruct), batch_size=8,
                        max_new_tokens=default_prompts().label["max_new_tokens"])


def tokens_table(neurons: dict[int, list[list[str]]]) -> pd.DataFrame:
    """A tokens table: each neuron's clusters in rank order, one coarse segment per cluster."""
    rows = []
    for neuron, clusters in neurons.items():
        rank = 0
        for cluster, words in enumerate(clusters):
            for i, word in enumerate(words):
                rows.append({"layer": 0, "neuron": neuron, "rank": rank, "token": f" {word}",
                             "cluster": cluster, "segment": cluster, "centrality": 1.0 - i / 10})
                rank += 1
    return pd.DataFrame(rows)


def config(tmp_path, **over):
    return {"neurons": None, "tokens_listed": 10, "cache": str(tmp_path / "answers.sqlite"),
            **over}


@pytest.mark.parametrize("text, label", [
    (" animals\n\nWords: dog", "animals"), (' "Legal documents".', "legal documents"),
    ("", None), (" 123 456", None), (" ...", None),
    (" The category name for these words is", None),
])
def test_an_answer_is_a_label_only_when_it_is_a_short_name(text, label):
    assert parse_label(text) == label


def test_prompts_are_versioned_and_name_their_content(tmp_path):
    prompts = default_prompts()
    assert prompts.key.startswith(f"v{prompts.version}-")
    text = PROMPTS_PATH.read_text()
    edited = tmp_path / "prompts.yaml"
    edited.write_text(text.replace(f"version: {prompts.version}", "version: 99"))
    assert load_prompts(edited).key.startswith("v99-") and load_prompts(edited).key != prompts.key
    question = prompts.label_prompt(ANIMALS)
    assert question.endswith("Words: dog, cat, horse, cow, sheep\nCategory:")
    assert question.count("Category:") == len(prompts.label["examples"]) + 1


def test_distinctness_false_when_clusters_share_a_label_true_when_not(local, tmp_path):
    """Two animal clusters get the same category; animals and colours do not."""
    tokens = tokens_table({1: [ANIMALS, MORE_ANIMALS], 2: [ANIMALS, COLOURS],
                           3: [COLOURS]})
    tables, stats = label_model(tokens, config(tmp_path), backend=local)
    labels = tables["labels"].set_index(["neuron", "unit", "index"])["label"]
    assert labels[(1, "cluster", 0)] == labels[(1, "cluster", 1)]
    assert labels[(2, "cluster", 0)] != labels[(2, "cluster", 1)]
    assert tables["labels"]["label"].str.len().gt(0).all()
    neurons = tables["label_neurons"].set_index("neuron")
    assert not neurons.loc[1, "labels_distinct"] and neurons.loc[2, "labels_distinct"]
    assert not neurons.loc[3, "defined"]  # one cluster: nothing to compare
    layer = tables["label_layers"].iloc[0]
    assert (layer["n_labelled"], layer["n_judged"], layer["n_distinct"]) == (3, 2, 1)
    assert layer["distinct_share"] == 0.5
    assert stats["asked"] == 3  # 5 cluster + 5 segment sets, 3 distinct questions


def test_plural_and_case_do_not_make_labels_distinct():
    frame = pd.DataFrame({"layer": 0, "neuron": [5, 5, 6, 6], "unit": "cluster",
                          "index": [0, 1, 0, 1], "label": ["Animals", "animal", "food", "tools"]})
    neurons = distinctness(frame)
    assert neurons["labels_distinct"].tolist() == [False, True]
    assert distinct_layers(neurons)["distinct_share"].tolist() == [0.5]


def test_a_rerun_asks_the_model_nothing_and_a_new_prompt_version_asks_again(local, tmp_path):
    sets = token_sets(tokens_table({0: [ANIMALS, COLOURS]}), 10)
    cache = AnswerCache(tmp_path / "answers.sqlite")
    before = local.calls
    first, stats = label_table(sets, local, cache)
    assert stats["asked"] == 2 and local.calls == before + 2
    again, stats = label_table(sets, local, AnswerCache(tmp_path / "answers.sqlite"))
    assert stats["asked"] == 0 and local.calls == before + 2
    assert again["label"].tolist() == first["label"].tolist()
    edited = tmp_path / "prompts.yaml"
    text = PROMPTS_PATH.read_text()
    version = load_prompts(PROMPTS_PATH).version
    edited.write_text(text.replace(f"version: {version}", f"version: {version + 1}", 1))
    _, stats = label_table(sets, local, cache, load_prompts(edited))
    assert stats["asked"] == 2 and local.calls == before + 4


def test_a_replaced_checkpoint_is_asked_again(local, tmp_path):
    """The labeller is named by its weights too: a checkpoint replaced under the same path (a
    re-converted GGUF file) must not answer from the old one's cache."""
    from intraneuron.labels.backends import local_identity

    folder = tmp_path / "labeller"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"old weights")
    old = local_identity(str(folder))
    (folder / "model.safetensors").write_bytes(b"new weights")
    assert local_identity(str(folder)) != old
    assert local.identity == local_identity(local.model_id) and "sha256:" in local.identity
    sets = token_sets(tokens_table({0: [ANIMALS]}), 10)
    cache = AnswerCache(tmp_path / "answers.sqlite")
    label_table(sets, local, cache)
    local.identity, before = old, local.calls
    try:
        _, stats = label_table(sets, local, cache)
    finally:
        local.identity = local_identity(local.model_id)
    assert stats["asked"] == 1 and local.calls == before + 1


class Flaky(BaseHTTPRequestHandler):
    """An OpenAI-compatible completions endpoint that fails `failures` times, then answers
    `answer`; it records each request's Authorization header."""

    failures, answer, seen = 0, " animals", []

    def do_POST(self):  # noqa: N802 (the http.server name)
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(self.headers.get("Authorization"))
        if type(self).failures > 0:
            type(self).failures -= 1
            self.send_error(503, "warming up")
            return
        body = json.dumps({"choices": [{"text": type(self).answer}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Flaky.seen = []
    yield server, f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_failed_requests_are_retried_with_backoff(flaky, tmp_path, monkeypatch, caplog):
    _, url = flaky
    Flaky.failures, Flaky.answer = 2, " animals"
    monkeypatch.setenv("LABELS_TEST_KEY", "sk-secret-4711")
    delays = []
    backend = OpenAIBackend(url, "m", "LABELS_TEST_KEY", timeout=5, retries=3, backoff=0.5,
                            sleep=delays.append)
    with caplog.at_level(logging.WARNING, logger="intraneuron"):
        tables, _ = label_model(tokens_table({0: [ANIMALS]}), config(tmp_path), backend=backend)
    assert delays == [0.5, 1.0] and backend.calls == 3
    assert tables["labels"]["label"].tolist() == ["animals", "animals"]
    assert Flaky.seen[-1] == "Bearer sk-secret-4711"  # the key is used ...
    assert "503" in caplog.text and "sk-secret-4711" not in caplog.text  # ... and never logged
    assert b"sk-secret-4711" not in (tmp_path / "answers.sqlite").read_bytes()


def test_an_answer_that_is_never_a_label_stops_naming_the_endpoint(flaky, tmp_path):
    _, url = flaky
    Flaky.failures, Flaky.answer = 0, " The category name for these words is"
    delays = []
    backend = OpenAIBackend(url, "m", timeout=5, retries=2, backoff=0.1, sleep=delays.append)
    with pytest.raises(LabelError, match=rf"endpoint {url} .*after 3 attempts.*is not a label"):
        label_model(tokens_table({0: [ANIMALS]}), config(tmp_path), backend=backend)
    assert delays == [0.1, 0.2] and backend.calls == 3


def test_an_unreachable_endpoint_stops_naming_it(tmp_path):
    url = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    backend = OpenAIBackend(url, "m", timeout=2, retries=1, backoff=0, sleep=lambda s: None)
    with pytest.raises(LabelError, match=rf"endpoint {url} .*after 2 attempts.*(refused|Error)"):
        label_model(tokens_table({0: [ANIMALS]}), config(tmp_path), backend=backend)


def test_bad_label_settings_are_named_early():
    with pytest.raises(ConfigError, match="labels.url"):
        validate({"labels": {"enabled": True, "backend": "openai"}})
    with pytest.raises(ConfigError, match="labels.api_key_env"):
        validate({"labels": {"api_key_env": "sk-abc def"}})
    with pytest.raises(ConfigError, match="labels.backend"):
        validate({"labels": {"backend": "remote"}})
