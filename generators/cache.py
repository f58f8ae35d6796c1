"""Request cache: SQLite in WAL mode, keyed by the hash of what determines a request's output.

WAL with synchronous=NORMAL survives a SIGKILL of the writer without corruption (a kill can lose
at most the last uncommitted transaction, never damage earlier ones). Only successful completions
are cached, so a later run retries the failed ones.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable

from generators.base import Completion


def default_cache_path() -> Path:
    env = os.environ.get("TINYSCHOOL_REQUEST_CACHE")
    if env:
        return Path(env)
    root = Path(os.environ.get("TINYSCHOOL_CACHE_DIR", Path.home() / ".cache" / "tinyschool"))
    return root / "requests.sqlite"


class RequestCache:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        keys = list(keys)
        found: dict[str, Completion] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                q = f"SELECT key, value FROM completions WHERE key IN ({','.join('?' * len(chunk))})"
                for k, v in self._db.execute(q, chunk):
                    found[k] = Completion.from_json(v)
        return found

    def put_many(self, items: Iterable[tuple[str, Completion]]) -> None:
        rows = [(k, c.to_json()) for k, c in items if c.ok]
        if not rows:
            return
        with self._lock:
            # IMMEDIATE takes the write lock up front, so a concurrent writer makes us wait (busy
            # timeout) instead of failing at once with "database is locked" when upgrading a read lock
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO completions (key, value) VALUES (?, ?)", rows)
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
