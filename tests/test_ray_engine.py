"""--engine ray: a pool of Ray actors returns the single-process vectors, survives a killed worker, and loses or
repeats no passage; on a local Ray with two CPUs (through `bench search index --engine ray`) and on two nodes
simulated on this machine (through bench.models.engine). One Ray job per cluster: each costs actor start-ups."""

import numpy as np
import pytest

from bench import cli, search
from bench.models import engine, ray_engine, registry

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # Ray's start-up and each actor's model load take seconds

# Lengths vary so that length-sorted batches pad differently; one text twice (its vector is computed once).
TEXTS = [f"Metin {i}. " + "Van Gölü Türkiye'nin en büyük gölüdür ve suyu sodalıdır. " * (1 + i % 7) for i in range(90)]
TEXTS.append(TEXTS[3])
BATCH = 8  # 12 batches: several blocks per actor


@pytest.fixture(scope="module", params=["local-2-cpus", "two-nodes"])
def cluster(request):
    if request.param == "local-2-cpus":
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=ray_engine.runtime_env())
        yield None
        ray.shutdown()
    else:
        from ray.cluster_utils import Cluster

        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        c.add_node(num_cpus=1)
        ray.init(address=c.address, log_to_driver=False, runtime_env=ray_engine.runtime_env())
        yield c
        ray.shutdown()
        c.shutdown()


def crash_once(monkeypatch, tmp_path):
    marker = tmp_path / "crashed"
    monkeypatch.setenv(ray_engine.CRASH_ONCE, str(marker))  # the first batch kills its actor's process
    return marker


def test_vectors_equal_the_single_process_ones_though_a_worker_was_killed(cluster, tiny_registry, monkeypatch,
                                                                          tmp_path):
    if cluster is None:
        pytest.skip("the local Ray runs the same job through `bench search index --engine ray` below")
    tiny = {e.name: e for e in registry.load_registry(tiny_registry)}["tiny"]
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "local-cache"))
    expected = engine.encode_passages(tiny, "torch-fp32", TEXTS, batch_size=BATCH)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "ray-cache"))  # the Ray run must compute, not read those
    marker = crash_once(monkeypatch, tmp_path)
    got = engine.encode_passages(tiny, "torch-fp32", TEXTS, engine="ray", address=cluster.address, actors=2,
                                 batch_size=BATCH)
    assert marker.exists()  # an actor killed its own process; its task ran again on a restarted actor
    # Every passage once, in its place: a lost row would be missing, a duplicated or swapped one would differ.
    assert got.shape == expected.shape == (len(TEXTS), 32)
    assert np.array_equal(got, expected), float(np.abs(got - expected).max())
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2


def test_search_index_engine_ray_stores_the_local_vectors_though_a_worker_was_killed(cluster, tiny_registry,
                                                                                      monkeypatch, tmp_path):
    if cluster is not None:
        pytest.skip("the two-node cluster runs the same job through bench.models.engine above")
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, t in enumerate(TEXTS):
        (folder / f"d{i:03d}.txt").write_text(t, encoding="utf-8")
    args = ["--models", str(tiny_registry), "--model", "tiny"]
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "local-cache"))
    assert cli.main(["search", "index", str(folder), "--index", str(tmp_path / "local"), *args]) == 0
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "ray-cache"))
    marker = crash_once(monkeypatch, tmp_path)
    assert cli.main(["search", "index", str(folder), "--index", str(tmp_path / "ray"), "--engine", "ray", *args]) == 0
    assert marker.exists()
    _, local_chunks, local = search.load(tmp_path / "local")
    _, ray_chunks, got = search.load(tmp_path / "ray")
    assert len(ray_chunks) == len(TEXTS)
    assert [c.id for c in ray_chunks] == [c.id for c in local_chunks] and np.array_equal(got, local)
