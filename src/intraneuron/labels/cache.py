"""Answers cached per (backend and model, prompts, question): a rerun, another variant or
another run of the same model asks the model nothing twice. One SQLite file (its own
transactions make each stored answer whole); the key is a hash, the row keeps what it names."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path


def answer_key(identity: str, prompts_key: str, question: str) -> str:
    return hashlib.sha256(json.dumps([identity, prompts_key, question]).encode()).hexdigest()


class AnswerCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, "
                       "identity TEXT, prompts TEXT, question TEXT, answer TEXT)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def get_many(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                part = keys[start:start + 500]
                rows = db.execute("SELECT key, answer FROM answers WHERE key IN "
                                  f"({','.join('?' * len(part))})", part).fetchall()
                found.update(rows)
        return found

    def answers(self) -> list[str]:
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT answer FROM answers")]

    def put_many(self, rows: list[tuple[str, str, str, str, str]]) -> None:
        """(key, identity, prompts key, question, answer) rows, in one transaction."""
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)", rows)


def cached_answers(cache: AnswerCache, identity: str, prompts_key: str, questions: list[str],
                   answer: Callable[[list[str]], list[str]], chunk: int = 64) -> tuple[list[str], int]:
    """The answer to every question, asking `answer(list of questions)` only for those not in
    the cache (in chunks, each stored as soon as it is answered, so an interrupted run keeps
    what it paid for). Returns the answers and how many were asked."""
    keys = [answer_key(identity, prompts_key, q) for q in questions]
    found = cache.get_many(sorted(set(keys)))
    missing = list(dict.fromkeys(q for q, k in zip(questions, keys, strict=True) if k not in found))
    for start in range(0, len(missing), chunk):
        part = missing[start:start + chunk]
        answers = answer(part)
        rows = [(answer_key(identity, prompts_key, q), identity, prompts_key, q, a)
                for q, a in zip(part, answers, strict=True)]
        cache.put_many(rows)
        found.update((r[0], r[4]) for r in rows)
    return [found[k] for k in keys], len(missing)
