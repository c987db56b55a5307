"""Passage vectors computed by a pool of Ray actors, each holding the encoder (ONNX or torch session) once.

The driver keeps what a local run keeps: it looks every passage up in the embedding cache, sends only the missing
ones to Ray, stores what comes back in the same cache, and reads the result out of it through the stage's own
`encode`. So a Ray run and a local run return the same matrix, and an interrupted Ray run resumes from what reached
the cache. The missing passages are grouped exactly as `EmbeddingCache.compute_missing` groups them (sorted by
length, `batch_size` at a time) and a group never straddles two Ray blocks: every vector is computed in the same
padded batch as the local path computes it, so padding cannot move its last bits.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np

from bench import threads as bench_threads
from bench.errors import BenchError

BLOCK_GROUPS = 8  # batches per Ray block: large enough to amortise a task's overhead, small enough to spread work
RETRIES = 3  # restarts of a dead actor, retries of its task: a crash that repeats every time must end the job
ENV_PREFIXES = ("BENCH_", "HF_", "TRANSFORMERS_", "SADEDEGEL")
# Fault injection for the tests (forwarded like every BENCH_ variable): a marker path; while no file is there, the
# next batch creates it and kills its worker process, as a node lost mid-job would.
CRASH_ONCE = "BENCH_RAY_CRASH_ONCE"


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401  (ray without the [data] extra cannot run the job)
    except ImportError as e:
        raise BenchError(f"--engine ray: Ray is not installed ({e.name or e}); install it with "
                         f"`pip install 'ray[data]==2.60.0'` or use --engine local") from None
    return ray


def _check_reachable(address: str) -> None:
    """A cluster address that nobody answers fails here in seconds, not after ray.init's minute of retries."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise BenchError(f"--address {address}: expected HOST:PORT of a Ray head node (e.g. 10.0.0.5:6379), "
                         f"ray://HOST:10001 or auto")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise BenchError(f"--address {address}: Ray head node unreachable ({e.strerror or type(e).__name__}); "
                         f"start it with `ray start --head` or pass another address") from None


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to the cluster at `address`, or start Ray here; True when this call started the connection (and
    its caller shuts it down). A process already connected (a test's cluster, a user's session) is used as it is."""
    ray = _ray()
    if ray.is_initialized():
        return False
    if address:
        _check_reachable(address)
    try:
        ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR", runtime_env=runtime_env())
    except (ConnectionError, TimeoutError, RuntimeError) as e:
        raise BenchError(f"--address {address or 'local'}: cannot start or join Ray ({' '.join(str(e).split())[:200]})"
                         ) from None
    return True


def forwarded_env() -> dict:
    """The driver's bench, Hugging Face and sadedegel settings, so actors find the same caches and offline mode."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}


def runtime_env() -> dict:
    """The job's environment: this bench's source (not whatever bench a node has installed) and forwarded_env()."""
    return {"py_modules": [str(Path(__file__).resolve().parent.parent)], "env_vars": forwarded_env()}


class StageEncoder:
    """One Ray actor: loads the stage once, then embeds batch after batch (rows: id, group, text)."""

    def __init__(self, entry, variant: str, threads: int):
        bench_threads.use(threads)  # one actor per CPU: more threads would fight each other
        from bench.models import encoders

        self.dense = encoders.load(entry, variant)

    def __call__(self, batch: dict) -> dict:
        marker = os.environ.get(CRASH_ONCE)
        if marker and not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)
        groups, texts = batch["group"], list(batch["text"])
        out = [None] * len(texts)
        for g in dict.fromkeys(groups.tolist()):
            rows = [i for i in range(len(texts)) if groups[i] == g]
            vecs = np.asarray(self.dense.embed([texts[i] for i in rows], "passage"), dtype=np.float32)
            for i, v in zip(rows, vecs):
                out[i] = v
        return {"id": batch["id"], "vector": np.stack(out)}


def _blocks(todo: list[str], batch_size: int, actors: int):
    import pandas as pd

    groups = -(-len(todo) // batch_size)
    # At least two blocks per actor when there is that much work, so no actor idles while another finishes.
    rows_per_block = batch_size * max(1, min(BLOCK_GROUPS, groups // (2 * actors)))
    for start in range(0, len(todo), rows_per_block):
        ids = np.arange(start, min(start + rows_per_block, len(todo)))
        yield pd.DataFrame({"id": ids, "group": ids // batch_size, "text": [todo[i] for i in ids]})


def embed_missing(dense, texts: list[str], actors: int | None, arrivals: list | None = None) -> np.ndarray:
    """Raw vectors of `texts` (already prepared, in order) from a pool of `actors`, each row exactly once.
    `arrivals`, when given, gets (perf_counter, rows) per returned batch: throughput without the actors' start-up."""
    ray = _ray()
    size = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    blocks = list(_blocks(texts, dense.batch_size, size))
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    ds = ray.data.from_pandas(blocks).map_batches(
        StageEncoder, fn_constructor_args=(dense.entry, dense.variant, 1),
        batch_size=None, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1,
        runtime_env={"env_vars": forwarded_env()},
        ray_remote_args_fn=lambda: {"max_restarts": RETRIES, "max_task_retries": RETRIES})
    vectors: np.ndarray | None = None
    seen = np.zeros(len(texts), dtype=np.int64)
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        ids, vecs = batch["id"], np.asarray(batch["vector"], dtype=np.float32)
        if vectors is None:
            vectors = np.empty((len(texts), vecs.shape[1]), np.float32)
        vectors[ids] = vecs
        np.add.at(seen, ids, 1)
        if arrivals is not None:
            arrivals.append((time.perf_counter(), len(ids)))
    if len(texts) and (vectors is None or not (seen == 1).all()):
        lost, twice = int((seen == 0).sum()), int((seen > 1).sum())
        raise BenchError(f"--engine ray: {lost} passages came back without a vector and {twice} more than once; "
                         f"nothing was stored")
    return vectors if vectors is not None else np.zeros((0, 1), np.float32)


def encode(entry, variant: str | None, texts: list[str], address: str | None = None, actors: int | None = None,
           batch_size: int | None = None) -> np.ndarray:
    """engine.encode_passages on Ray: the same matrix as the local path (see the module's note)."""
    from bench.models import encoders

    _ray()
    candidate = encoders.load(entry, variant)  # the fingerprints that key the cache; no passage is encoded here
    return encode_candidate(candidate, texts, address, actors, batch_size)[0]


def encode_candidate(candidate, texts: list[str], address: str | None = None, actors: int | None = None,
                     batch_size: int | None = None) -> tuple[np.ndarray, list[int]]:
    """engine.encode_with on Ray, for a candidate loaded here: (vectors, each dense stage's width)."""
    from bench.models.embcache import EmbeddingCache
    from bench.models.stages import dense_stages, encode_with
    from bench.paths import cache_dir

    ray = _ray()
    dense = dense_stages(candidate)
    started = connect(address, actors) if dense else False
    try:
        for d in dense:
            if batch_size:
                d.batch_size = batch_size
            cache = EmbeddingCache(cache_dir() / "embeddings.sqlite")
            fp = d.cache_fingerprint("passage")
            prepared = d.prepare(texts, "passage")
            keys = [cache.key(fp, t) for t in prepared]
            found = cache.get_many(keys)
            todo = sorted({k: t for k, t in zip(keys, prepared) if k not in found}.items(), key=lambda kv: len(kv[1]))
            if todo:
                vecs = embed_missing(d, [t for _, t in todo], actors)
                for start in range(0, len(todo), 1000):
                    cache.put_many({k: v for (k, _), v in zip(todo[start:start + 1000], vecs[start:start + 1000])})
    finally:
        if started:
            ray.shutdown()
    return encode_with(candidate, texts, progress=False)
