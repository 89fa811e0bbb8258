"""The openai backend against a real OpenAI-compatible server: `transformers serve` (from
transformers[serving]) on the local SmolLM2-135M-Instruct checkpoint. Greedy answers match the
local backend's; a server killed mid-run stops the run with the endpoint named and nothing
half-written. One server for the module; the kill test runs last."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import torch

from intraneuron.labels import LabelError, LocalBackend, OpenAIBackend, default_prompts
from intraneuron.labels.cache import AnswerCache
from intraneuron.labels.stage import label_model, label_table, token_sets, write_tables

pytestmark = [  # about 12 s: the server loads in ~5 s
    pytest.mark.skipif(importlib.util.find_spec("fastapi") is None
                       or importlib.util.find_spec("uvicorn") is None,
                       reason="transformers serve needs transformers[serving] (requirements.txt)"),
]

SETS = [["dog", "cat", "horse", "cow", "sheep"], ["law", "contract", "court", "judge"],
        ["red", "blue", "green", "yellow", "purple"], ["tail", "fur", "claws", "head", "eyes"]]
SECRET = "sk-never-written-0815"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(smollm2_instruct, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    cli = Path(sys.executable).with_name("transformers")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([str(cli), "serve", str(smollm2_instruct), "--host", "127.0.0.1",
                                 "--port", str(port), "--dtype", "float32", "--device", "cpu"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"transformers serve did not answer /health in 120 s: {log.read_text()[-2000:]}")
    yield proc, f"{url}/v1", str(smollm2_instruct)
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def sets_table() -> pd.DataFrame:
    rows = [{"layer": 0, "neuron": n, "rank": r, "token": f" {w}", "cluster": 0, "segment": 0,
             "centrality": 1.0 - r / 10} for n, words in enumerate(SETS)
            for r, w in enumerate(words)]
    return pd.DataFrame(rows)


def test_the_server_gives_the_local_backends_greedy_labels(server, tmp_path, monkeypatch):
    proc, url, model = server
    torch.set_num_threads(1)
    prompts = default_prompts()
    sets = token_sets(sets_table(), 10)
    local = LocalBackend(model, batch_size=8, max_new_tokens=prompts.label["max_new_tokens"])
    mine, _ = label_table(sets, local, AnswerCache(tmp_path / "local.sqlite"))
    monkeypatch.setenv("LABELS_SERVER_KEY", SECRET)
    remote = OpenAIBackend(url, model, "LABELS_SERVER_KEY", timeout=60, retries=1, backoff=0.5,
                           max_new_tokens=prompts.label["max_new_tokens"])
    theirs, stats = label_table(sets, remote, AnswerCache(tmp_path / "remote.sqlite"))
    assert stats["asked"] == len(SETS) and remote.calls == len(SETS)  # no retry was needed
    assert theirs["label"].tolist() == mine["label"].tolist()
    assert "animals" in mine["label"].tolist()  # real answers, not one repeated string


def test_a_server_killed_mid_run_stops_naming_the_endpoint_and_writes_nothing(
        server, tmp_path, monkeypatch, caplog):
    proc, url, model = server
    monkeypatch.setenv("LABELS_SERVER_KEY", SECRET)
    words = ["apple", "pear", "plum", "fig", "lime", "kiwi", "date", "peach", "grape", "melon"]
    many = [[words[i % 10], words[(i + 1) % 10], words[(i + 3) % 10], f"item{i}"] for i in range(40)]
    tokens = pd.DataFrame([{"layer": 0, "neuron": n, "rank": r, "token": w, "cluster": 0,
                            "segment": 0, "centrality": 1.0 - r / 10}
                           for n, ws in enumerate(many) for r, w in enumerate(ws)])
    cfg = {"backend": "openai", "url": url, "model": model, "api_key_env": "LABELS_SERVER_KEY",
           "timeout": 10, "retries": 2, "backoff": 0.2, "neurons": None, "tokens_listed": 10,
           "cache": str(tmp_path / "answers.sqlite")}
    out = tmp_path / "labels"
    outputs = {name: str(out / f"{name}.parquet") for name in ("labels", "label_neurons", "label_layers")}
    failure = []

    def run():
        try:
            tables, stats = label_model(tokens, cfg)
            write_tables(tables, outputs, {"labeller": stats["backend"]})
        except Exception as exc:  # the test inspects it
            failure.append(exc)

    answered = tmp_path / "answers.sqlite"
    with caplog.at_level(logging.WARNING, logger="intraneuron"):
        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                answered.exists() and AnswerCache(answered).answers()):
            time.sleep(0.05)  # killed once the first answers are in
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        worker.join(120)
    assert not worker.is_alive()
    assert failure and isinstance(failure[0], LabelError), failure
    assert f"endpoint {url} " in str(failure[0]) and "after 3 attempts" in str(failure[0])
    assert "is not a label" not in str(failure[0])  # it stopped for the dead server
    assert "retry 2 of 2" in caplog.text
    assert not out.exists() or not any(out.iterdir())  # no table, not even a temporary one
    cached = AnswerCache(answered).answers()  # the answers paid for, each one whole
    assert 1 <= len(cached) < len(many) and all(a and a.strip() == a for a in cached)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text and SECRET not in str(failure[0])
