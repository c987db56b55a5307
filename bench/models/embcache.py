"""On-disk embedding cache keyed by (model fingerprint, variant, text hash): a second run re-encodes nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np


class EmbeddingCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=60)
        self.db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")

    @staticmethod
    def key(fingerprint: str, text: str) -> str:
        return hashlib.sha256(f"{fingerprint}\x00{text}".encode("utf-8")).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            rows = self.db.execute(
                f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
            found.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return found

    def compute_missing(self, fingerprint: str, items: list, text_of, compute, batch: int, desc: str, unit: str,
                        progress: bool = True) -> list[np.ndarray]:
        """One vector per item: cached ones read back, the rest computed in batches of similar length (less padding)
        and stored batch by batch, so an interrupted run keeps what it computed."""
        from tqdm.auto import tqdm

        keys = [self.key(fingerprint, text_of(x)) for x in items]
        found = self.get_many(keys)
        todo = sorted({k: x for k, x in zip(keys, items) if k not in found}.items(), key=lambda kv: len(text_of(kv[1])))
        bar = tqdm(total=len(todo), desc=desc, unit=unit, disable=not progress or not todo, leave=False)
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            new = dict(zip((k for k, _ in chunk), np.asarray(compute([x for _, x in chunk]), dtype=np.float32)))
            self.put_many(new)
            found.update(new)
            bar.update(len(chunk))
        bar.close()
        return [found[k] for k in keys]

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
            [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
        )
        self.db.commit()
