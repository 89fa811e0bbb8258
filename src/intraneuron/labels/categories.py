"""Prompt-based segmentation: an instruct model sorts every core token into one category of a
closed list (`prompts.yaml`, `categorize`), giving a partition that no embedding shaped
(`analysis.proxy: llm`).

Each option is scored by its log-likelihood as the completion of the token's question after a
few examples; the token's category is the option most raised above its log-likelihood for a
content-free token (contextual calibration). The examples are the same for
every token, so their keys and values are computed once and shared; a token's question runs
once per batch, and only the options' later tokens run per option. `reference_logliks` scores
the same sequences by one whole forward pass each, which the tests compare it with.
"""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np
import pandas as pd

from .cache import AnswerCache, cached_answers
from .prompts import Prompts, default_prompts


def token_text(token: str) -> str:
    """What the prompt shows of a token: its text stripped, or for a whitespace token its
    escaped form ('\\n'), so no question is empty."""
    return token.strip() or token.encode("unicode_escape").decode("ascii") or "(empty)"


def questions_of(prompts: Prompts, tokens: list[str]) -> list[str]:
    """Each token's question: what follows the shared examples, before a category's name."""
    return [prompts.categorize_question(token_text(t)) for t in tokens]


class CategoryScorer:
    """Log-likelihoods of each category name after each token's question, with a causal LM
    (a transformers checkpoint folder or hub id), in float32 on the CPU or the first GPU."""

    def __init__(self, model: str, prompts: Prompts | None = None, batch_size: int = 16,
                 threads: int | None = None, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .backends import local_identity

        if threads:
            torch.set_num_threads(int(threads))
        self.prompts = prompts or default_prompts()
        self.batch_size = int(batch_size)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model))
        self.model = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.float32)
        self.model.to(self.device).eval()
        self.identity = local_identity(str(model))
        self.calls = 0  # tokens scored (the calibration's not counted): the cache test counts them
        self.prefix = self._ids(self.prompts.categorize_prefix())
        self.options = [self._ids(" " + name) for name in self.prompts.categories]
        with torch.inference_mode():
            out = self.model(torch.tensor([self.prefix], device=self.device), use_cache=True)
        self.prefix_cache = out.past_key_values
        free = self.prompts.categorize.get("calibrate_with") or []
        self.baseline = (self.logliks(self.questions(free)).mean(axis=0) if free
                         else np.zeros(len(self.options)))
        self.calls = 0

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def questions(self, tokens: list[str]) -> list[str]:
        return questions_of(self.prompts, tokens)

    def logliks(self, questions: list[str]) -> np.ndarray:
        """(questions, categories) float64: log P(category name | examples + question)."""
        out = np.empty((len(questions), len(self.options)))
        by_length = defaultdict(list)  # equal lengths need no padding between prefix and option
        suffixes = [self._ids(q) for q in questions]
        for row, ids in enumerate(suffixes):
            by_length[len(ids)].append(row)
        for rows in by_length.values():
            for start in range(0, len(rows), self.batch_size):
                part = rows[start:start + self.batch_size]
                out[part] = self._score([suffixes[r] for r in part])
        self.calls += len(questions)
        return out

    def _score(self, suffixes: list[list[int]]) -> np.ndarray:
        import torch

        n = len(suffixes)
        with torch.inference_mode():
            cache = copy.deepcopy(self.prefix_cache)
            cache.batch_repeat_interleave(n)
            out = self.model(torch.tensor(suffixes, device=self.device), past_key_values=cache,
                             use_cache=True, logits_to_keep=1)
            first = out.logits[:, -1].float().log_softmax(-1)
            scores = first[:, [ids[0] for ids in self.options]].double()
            longer = [i for i, ids in enumerate(self.options) if len(ids) > 1]
            if longer:  # the later tokens of multi-token names: a row per (token, such name)
                names = [self.options[i] for i in longer]
                width = max(len(ids) for ids in names) - 1  # token j + 1 follows token j
                pad = self.tokenizer.pad_token_id or 0

                def padded(rows, fill=pad):
                    return torch.tensor([r + [fill] * (width - len(r)) for r in rows] * n,
                                        device=self.device)

                cache = out.past_key_values
                cache.batch_repeat_interleave(len(names))
                inputs = padded([ids[:-1] for ids in names])
                targets = padded([ids[1:] for ids in names])
                mask = padded([[1] * (len(ids) - 1) for ids in names], 0)
                logp = self.model(inputs, past_key_values=cache).logits.float().log_softmax(-1)
                picked = logp.gather(-1, targets[:, :, None])[:, :, 0] * mask
                scores[:, longer] += picked.sum(1).double().view(n, len(names))
        return scores.cpu().numpy()

    def categorize(self, questions: list[str]) -> list[str]:
        """Each question's category: the option most raised above its log-likelihood for the
        content-free tokens (answers for the answer cache)."""
        best = (self.logliks(questions) - self.baseline).argmax(axis=1)
        return [self.prompts.categories[i] for i in best]


def reference_logliks(model, tokenizer, prefix: str, question: str,
                      options: list[str]) -> np.ndarray:
    """The same log-likelihoods by one whole forward pass per option (for the tests)."""
    import torch

    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    head = ids(prefix) + ids(question)
    out = []
    for name in options:
        option = ids(" " + name)
        with torch.inference_mode():
            logp = model(torch.tensor([head + option])).logits[0].float().log_softmax(-1)
        out.append(sum(float(logp[len(head) - 1 + j, t]) for j, t in enumerate(option)))
    return np.array(out)


def categorize_tokens(tokens: pd.DataFrame, cfg: dict, cache: AnswerCache,
                      prompts: Prompts | None = None, scorer=None) -> tuple[pd.DataFrame, dict]:
    """`tokens` (token_id, token) with each token's category; answers are cached per (model,
    prompts, question) like the labels, and the model is loaded only when one is missing.
    Returns the table, and how many tokens were scored and by which labeller."""
    from .backends import local_identity

    prompts = prompts or default_prompts()
    questions = questions_of(prompts, tokens["token"].tolist())
    identity = scorer.identity if scorer is not None else local_identity(str(cfg["model"]))

    def answer(part: list[str]) -> list[str]:
        nonlocal scorer
        if scorer is None:
            scorer = CategoryScorer(cfg["model"], prompts, cfg["batch_size"], cfg.get("threads"))
        return scorer.categorize(part)

    answers, asked = cached_answers(cache, identity, prompts.key, questions, answer, chunk=256)
    return tokens.assign(category=answers), {"asked": asked, "labeller": identity,
                                             "prompts": prompts.key}


def categorize_vocabulary(token_ids, texts, cfg: dict, wordnet_dir: str,
                          prompts: Prompts | None = None, scorer=None) -> tuple[pd.DataFrame, dict]:
    """The `categories` table of a core selection's eligible tokens (every token that can be
    a core token), with each one's WordNet supersense beside its category."""
    from ..analysis.columns import conform
    from ..wordnet import load

    prompts = prompts or default_prompts()
    tokens = pd.DataFrame({"token_id": np.asarray(token_ids, dtype=np.int64),
                           "token": [str(t) for t in texts]})
    table, stats = categorize_tokens(tokens, cfg, AnswerCache(cfg["cache"]), prompts, scorer)
    wordnet = load(wordnet_dir)
    table["supersense"] = [wordnet.supersense(t) or "" for t in table["token"]]
    return conform(table, "categories"), stats


def validity(table: pd.DataFrame) -> dict:
    """How far the labeller's categories agree with WordNet's, and what it says of the tokens
    WordNet has no entry for: AMI between category and supersense on the tokens both cover
    (0 = chance, 1 = the same partition up to names), and the missed tokens' categories."""
    from sklearn.metrics import adjusted_mutual_info_score

    covered = table["supersense"] != ""
    both = table[covered]
    missed = table[~covered]
    ami = (adjusted_mutual_info_score(both["supersense"], both["category"])
           if len(both) >= 2 else float("nan"))
    shares = missed["category"].value_counts(normalize=True)
    return {"n_tokens": len(table), "n_wordnet": len(both), "ami_wordnet": float(ami),
            "n_missed": len(missed),
            "missed_categories": [(str(k), float(v)) for k, v in shares.items()],
            "n_categories": int(table["category"].nunique())}
