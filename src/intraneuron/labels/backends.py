"""Where labels come from: an instruct model in this process (`local`) or any server speaking
the OpenAI completions API (`openai`). Both take completion prompts and return the raw text;
`parse_label` decides what counts as a label."""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable

log = logging.getLogger("intraneuron")

MAX_LABEL_WORDS = 5
MAX_LABEL_CHARS = 40


class LabelError(RuntimeError):
    """The labeller could not produce a label: raised instead of writing an empty one."""


def parse_label(text: str) -> str | None:
    """The category name in a completion, or None when the answer is not a label.

    The first line, stripped of quotes and end punctuation, lower-cased; not a label when it is
    empty, has no letter, or is longer than a short name (a sentence, an explanation)."""
    line = (text or "").strip().split("\n", 1)[0]
    line = line.strip().strip("\"'`*.,;:!?()[]{} ").lower()
    line = re.sub(r"\s+", " ", line)
    if (not line or not re.search(r"[a-z]", line) or len(line) > MAX_LABEL_CHARS
            or len(line.split()) > MAX_LABEL_WORDS):
        return None
    return line


def local_identity(model: str) -> str:
    """What names a local labeller in the answer cache and the outputs: its path or hub id and,
    for a folder, a hash of its weight files, so a checkpoint replaced under the same path (a
    re-converted GGUF file) is asked again instead of answering from the old one's cache."""
    from ..models import weights_fingerprint

    if os.path.isdir(model):
        return f"local:{model} ({weights_fingerprint(model)[:23]})"
    return f"local:{model}"


class LocalBackend:
    """Greedy generation with a transformers causal LM, in batches (left-padded)."""

    name = "local"

    def __init__(self, model: str, batch_size: int = 16, max_new_tokens: int = 6,
                 threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(int(threads))
        self.model_id = str(model)
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_id, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(self.model_id, dtype=torch.float32)
        self.model.eval()
        self.calls = 0  # prompts answered: the cache test counts them
        self.identity = local_identity(self.model_id)

    def complete(self, prompts: list[str]) -> list[str]:
        import torch

        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start:start + self.batch_size]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True)
            with torch.inference_mode():
                ids = self.model.generate(**enc, max_new_tokens=self.max_new_tokens,
                                          do_sample=False, pad_token_id=self.tokenizer.pad_token_id)
            new = ids[:, enc["input_ids"].shape[1]:]
            out += self.tokenizer.batch_decode(new, skip_special_tokens=True)
            self.calls += len(batch)
        return out

    def labels(self, prompts: list[str]) -> list[str]:
        """A label per prompt; greedy decoding would give a bad answer again, so one that is
        not a label stops the run, naming the model and the answer."""
        out = []
        for prompt, text in zip(prompts, self.complete(prompts), strict=True):
            label = parse_label(text)
            if label is None:
                question = prompt.rsplit("\n\n", 1)[-1].replace("\n", " / ")
                raise LabelError(f"local labeller {self.model_id}: the answer {text!r} to "
                                 f"{question!r} is not a label")
            out.append(label)
        return out


class OpenAIBackend:
    """Any OpenAI-compatible server's `POST {url}/completions`, one prompt per request, greedy
    (temperature 0). The API key is read from the environment variable named in the config and
    is sent only in the Authorization header: never logged, never written."""

    name = "openai"
    cache_chunk = 1  # one request per answer: each is cached as soon as it arrives

    def __init__(self, url: str, model: str, api_key_env: str | None = None,
                 timeout: float = 60.0, retries: int = 3, backoff: float = 1.0,
                 max_new_tokens: int = 6, sleep: Callable[[float], None] = time.sleep):
        self.url = url.rstrip("/")
        self.model_id = model
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_new_tokens = int(max_new_tokens)
        self.sleep = sleep
        self.calls = 0  # requests sent, retries included

    @property
    def identity(self) -> str:
        return f"openai:{self.url}:{self.model_id}"

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _request(self, prompt: str) -> str:
        body = json.dumps({"model": self.model_id, "prompt": prompt, "temperature": 0,
                           "max_tokens": self.max_new_tokens}).encode()
        req = urllib.request.Request(f"{self.url}/completions", data=body,
                                     headers=self._headers(), method="POST")
        self.calls += 1
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
        try:
            return str(data["choices"][0]["text"])
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"an answer without choices[0].text: {str(data)[:200]}") from exc

    def complete_label(self, prompt: str) -> str:
        """One label, retried with exponential backoff on a failed request, a timeout or an
        answer that is not a label; then a LabelError naming the endpoint."""
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                log.warning("labeller endpoint %s: %s; retry %d of %d in %.1f s", self.url,
                            problem, attempt, self.retries, delay)
                self.sleep(delay)
            try:
                text = self._request(prompt)
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code} {exc.reason}"
                continue
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
                continue
            label = parse_label(text)
            if label is not None:
                return label
            problem = f"the answer {text[:60]!r} is not a label"
        raise LabelError(
            f"labeller endpoint {self.url} (model {self.model_id!r}) failed after "
            f"{self.retries + 1} attempts: {problem}. Check that the server is running and "
            "serves that model (labels.url, labels.model), or raise labels.timeout / "
            "labels.retries")

    def labels(self, prompts: list[str]) -> list[str]:
        return [self.complete_label(p) for p in prompts]


def make_backend(cfg: dict, max_new_tokens: int):
    """The backend of a `labels` config section (`max_new_tokens` from the prompts file)."""
    if cfg["backend"] == "local":
        return LocalBackend(cfg["model"], cfg["batch_size"], max_new_tokens, cfg.get("threads"))
    return OpenAIBackend(cfg["url"], cfg["model"], cfg.get("api_key_env"), cfg["timeout"],
                         cfg["retries"], cfg["backoff"], max_new_tokens)
