"""The `bench search` index on disk: one LanceDB table of passages (and their vectors) plus a manifest written last.

Why LanceDB: it is embedded (a folder, no server), each add or delete is an atomic, versioned commit, and it builds
ANN indexes (IVF-PQ, IVF-HNSW-SQ) over the same table, so a folder can grow to millions of passages without a second
store. The manifest names the table version its writer finished with; a reader checks that version out, so rows a
killed writer added later are never seen, and a table that cannot give that version (damaged, pruned, missing) makes
the whole index BrokenIndex: refused by `query`, rebuilt from scratch by `index`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np

from bench import fileio
from bench.data.chunking import Chunk
from bench.errors import BenchError

TABLE = "passages"
MANIFEST = "manifest.json"
INDEX_FILES = (MANIFEST, f"{TABLE}.lance")
LEGACY_FILES = ("chunks.jsonl", "embeddings.npy")  # the hand-written store this one replaced: rebuilt, not read
TEXT_COLUMNS = ("id", "file", "title", "text", "position", "start", "end", "meta")
ADD_ROWS = 50_000  # rows per commit: bounds the Arrow batch in memory on a large first build

# From this many passages a bi-encoder's index gets an ANN index; below it an exact scan of the matrix is fast.
ANN_FROM = 100_000
# IVF-HNSW with int8 scalar quantisation: a quarter of fp32's bytes per vector, HNSW inside each partition so a query
# visits a few hundred vectors per probed partition; the top k × refine_factor are rescored on the stored fp32
# vectors. Tuned on 10^5 synthetic passages (sadedegel vectors, bench.search_bench): refine 4 or HNSW ef 100 held
# recall@10 against exact search under 0.9 whatever the probes; ef 300 with refine 10 gave 0.97 at 16 probes.
ANN = {"type": "IVF_HNSW_SQ", "nprobes": 16, "refine_factor": 10, "ef": 300}


class BrokenIndex(BenchError):
    """An index whose files do not agree (an interrupted or damaged write): rebuilt, never reused."""

    def __init__(self, index: Path, problem: str):
        self.what = f"{index}: search index is damaged ({problem})"
        super().__init__(f"{self.what}; re-index with `python -m bench search index DIR --index {index}`")


def has_index_files(index: Path) -> bool:
    return any((index / name).exists() for name in INDEX_FILES + LEGACY_FILES)


def _db(index: Path):
    import lancedb

    return lancedb.connect(str(index))


@dataclass
class Store:
    """An index opened at its manifest's table version."""

    path: Path
    manifest: dict
    table: object = field(repr=False)
    loaded: tuple | None = field(default=None, repr=False)

    @property
    def width(self) -> int:
        return sum(d["dim"] for d in self.manifest["dense"])

    def count(self) -> int:
        return self.table.count_rows()

    def rows(self, columns=TEXT_COLUMNS):
        """Every row's `columns` as a pyarrow table, in the order of the manifest's passage list."""
        try:
            t = self.table.to_arrow().select(list(columns))
        except Exception as e:  # a damaged data file surfaces only when it is read
            raise BrokenIndex(self.path, f"{type(e).__name__} reading the passage table") from None
        order = {cid: i for i, cid in enumerate(self.manifest_ids())}
        ids = t.column("id").to_pylist()
        if len(ids) != len(order) or set(ids) != set(order):
            raise BrokenIndex(self.path, f"{MANIFEST} and the passage table list different passages")
        return t.take(np.argsort([order[i] for i in ids], kind="stable"))

    def manifest_ids(self) -> list[str]:
        return [i for f in self.manifest["files"].values() for i in f["chunks"]]

    def chunks_and_vectors(self) -> tuple[list[Chunk], np.ndarray]:
        """All passages and their vectors in memory: what BM25, hybrids and re-ranking pipelines search."""
        if self.loaded is None:
            self.loaded = self._read_all()
        return self.loaded

    def _read_all(self) -> tuple[list[Chunk], np.ndarray]:
        cols = TEXT_COLUMNS + (("vector",) if self.width else ())
        t = self.rows(cols)
        chunks = [chunk_of(r) for r in t.select(list(TEXT_COLUMNS)).to_pylist()]
        if not self.width:
            return chunks, np.zeros((len(chunks), 0), np.float32)
        flat = t.column("vector").combine_chunks()
        vectors = flat.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(chunks), -1)
        return chunks, vectors

    def has_ann(self) -> bool:
        return bool(self.manifest.get("ann"))

    def warm(self) -> None:
        """Load the ANN index into memory now, as opening a model does: without this the first question pays for
        reading the index's partitions from disk (hundreds of ms here), and `search query` answers one question."""
        if not self.has_ann():
            return
        # One search that probes every partition reads them all (prewarm_index is a hint that IVF-HNSW ignores).
        probe = np.ones(self.width, np.float32) / np.sqrt(self.width)
        self.table.search(probe, vector_column_name="vector").distance_type("dot").nprobes(1 << 20).limit(1) \
            .select(["id"]).to_arrow()

    def nearest(self, vector: np.ndarray, k: int) -> list[tuple[float, Chunk]]:
        """The k passages of highest dot product with `vector`, through the ANN index."""
        ann = self.manifest["ann"]
        q = (self.table.search(vector.astype(np.float32), vector_column_name="vector").distance_type("dot")
             .nprobes(ann["nprobes"]).refine_factor(ann["refine_factor"]).limit(k).select(list(TEXT_COLUMNS)))
        if "ef" in ann:  # HNSW's candidate list: it must hold the k × refine_factor candidates that get rescored
            q = q.ef(max(ann["ef"], k * ann["refine_factor"]))
        try:
            rows = q.to_arrow().to_pylist()
        except Exception as e:  # a damaged data file or ANN index surfaces only when it is read
            raise BrokenIndex(self.path, f"{type(e).__name__} searching the passage table") from None
        return [(1.0 - float(r.pop("_distance")), chunk_of(r)) for r in rows]  # LanceDB's dot distance is 1 - dot


def chunk_of(row: dict) -> Chunk:
    return Chunk(id=row["id"], title=row["title"], text=row["text"], source=row["file"], position=row["position"],
                 start=int(row["start"]), end=int(row["end"]), meta=json.loads(row["meta"]))


def arrow_rows(chunks: list[Chunk], vectors: np.ndarray):
    import pyarrow as pa

    cols = {"id": [c.id for c in chunks], "file": [c.source for c in chunks], "title": [c.title for c in chunks],
            "text": [c.text for c in chunks], "position": [c.position for c in chunks],
            "start": pa.array([c.start for c in chunks], pa.int64()), "end": pa.array([c.end for c in chunks], pa.int64()),
            "meta": [json.dumps(c.meta, ensure_ascii=False) for c in chunks]}
    if vectors.shape[1]:
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), pa.float32())
        cols["vector"] = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
    return pa.table(cols)


def read_manifest(index: Path) -> dict:
    """The manifest, checked for the fields a reader relies on; BrokenIndex when it is missing or malformed."""
    if any((index / name).exists() for name in LEGACY_FILES):
        raise BrokenIndex(index, "written by an older bench, which stored it as .npy and .jsonl files")
    try:
        manifest = json.loads((index / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError(f"{MANIFEST} is not an index manifest")
        for entry in manifest["files"].values():
            if not isinstance(entry.get("sha256"), str) or not isinstance(entry.get("chunks"), list):
                raise ValueError(f"a file entry of {MANIFEST} lacks sha256 or chunks")
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise BrokenIndex(index, f"{type(e).__name__} reading {MANIFEST}") from None
    if not (isinstance(manifest.get("model"), str) and isinstance(manifest.get("variant"), str)):
        raise BrokenIndex(index, f"{MANIFEST} names no model")
    if type(manifest.get("version")) is not int:
        raise BrokenIndex(index, f"{MANIFEST} names no table version")
    return manifest


def open_store(index: Path) -> Store:
    """The index at `index`, at the table version its manifest names, checked to agree with the manifest."""
    if not has_index_files(index):
        raise BenchError(f"{index}: no search index here; build one with `python -m bench search index DIR`")
    manifest = read_manifest(index)
    try:
        table = _db(index).open_table(TABLE)
        table.checkout(manifest["version"])
        schema = table.schema
        rows = table.count_rows()
    except Exception as e:  # LanceDB raises its own errors (and OSError, ValueError) for damaged or missing files
        raise BrokenIndex(index, f"{type(e).__name__} opening the passage table at version {manifest['version']}") \
            from None
    width = schema.field("vector").type.list_size if "vector" in schema.names else 0
    if "dense" not in manifest:  # an index from before pipelines held one bi-encoder's vectors, unnamed
        manifest["dense"] = [{"stage": f"{manifest['model']} [{manifest['variant']}]", "dim": width}] if width else []
    spec = manifest["dense"]
    if not (isinstance(spec, list) and all(isinstance(d, dict) and isinstance(d.get("stage"), str)
                                           and type(d.get("dim")) is int and d["dim"] > 0 for d in spec)):
        raise BrokenIndex(index, f"{MANIFEST} field 'dense' is not a list of stages with their widths")
    if sum(d["dim"] for d in spec) != width:
        raise BrokenIndex(index, f"{MANIFEST} names {sum(d['dim'] for d in spec)} vector columns, "
                                 f"the passage table holds {width}")
    ids = sum(len(f["chunks"]) for f in manifest["files"].values())
    if rows != ids:
        raise BrokenIndex(index, f"{MANIFEST} lists {ids} passages, the passage table holds {rows}")
    opened = Store(index, manifest, table)
    if not opened.has_ann():
        opened.chunks_and_vectors()  # read now, before any model loads: a damaged table is named at once
    return opened


class Writer:
    """Changes to an index, committed to the table as they come; the manifest, written by `commit` last, is what
    makes them visible. Starts from `old` (an open Store) or from nothing."""

    def __init__(self, index: Path, old: Store | None):
        self.index, self.table = index, None
        if old is not None:
            self.table = old.table
            self.table.checkout_latest()
            if self.table.version != old.manifest["version"]:
                # A writer was killed after committing rows its manifest never named: back to the named version.
                self.table.restore(old.manifest["version"])

    def delete_files(self, files: list[str]) -> None:
        for start in range(0, len(files), 500):
            names = ", ".join("'" + f.replace("'", "''") + "'" for f in files[start:start + 500])
            self.table.delete(f"file IN ({names})")

    def add(self, chunks: list[Chunk], vectors: np.ndarray) -> None:
        for start in range(0, len(chunks), ADD_ROWS):
            rows = arrow_rows(chunks[start:start + ADD_ROWS], vectors[start:start + ADD_ROWS])
            if self.table is None:
                self.table = _db(self.index).create_table(TABLE, data=rows, mode="overwrite")
            else:
                self.table.add(rows)

    def ann(self, wanted: bool, had: dict | None) -> dict | None:
        """The ANN index: created once a bi-encoder's index reaches ANN_FROM passages, kept up to date after."""
        if not wanted or self.table.count_rows() < ANN_FROM:
            return None
        if had:
            self.table.optimize()  # adds the new rows to the existing index (until then they are scanned exactly)
            # Search settings are read per query: an index built under older ones takes today's.
            return dict(ANN) if had.get("type") == ANN["type"] else had
        # Compacted first: the index is trained on the final files, and commit's compaction then has nothing to
        # rewrite and remap (on 10^5 passages added in two commits, compaction after indexing took minutes).
        self.table.optimize()
        n = self.table.count_rows()
        self.table.create_index(metric="dot", vector_column_name="vector", index_type=ANN["type"],
                                num_partitions=max(1, int(np.sqrt(n) / 4)))
        return dict(ANN)

    def commit(self, manifest: dict) -> None:
        import warnings

        self.table.optimize()  # compacts the small files of many adds and deletes; a new version if it did
        manifest = {**manifest, "version": self.table.version}
        fileio.write_atomic(self.index / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
        # Only now may older versions go (until the rename, the old manifest named one of them). Nothing is left
        # to compact, so this commits no version of its own and the manifest's stays the latest.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "removes every version except the latest": we hold the write lock
            self.table.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)
