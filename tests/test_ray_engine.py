"""--engine ray: a pool of Ray actors returns the single-process vectors, survives a killed worker, and loses or
repeats no passage; on a local Ray with two CPUs and on two nodes simulated on this machine."""

import numpy as np
import pytest

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


@pytest.fixture
def tiny(tiny_registry):
    return {e.name: e for e in registry.load_registry(tiny_registry)}["tiny"]


def test_vectors_equal_the_single_process_ones_though_a_worker_was_killed(cluster, tiny, monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "local-cache"))
    expected = engine.encode_passages(tiny, "torch-fp32", TEXTS, batch_size=BATCH)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "ray-cache"))  # the Ray run must compute, not read those
    marker = tmp_path / "crashed"
    got = ray_engine.encode(tiny, "torch-fp32", TEXTS, actors=2, batch_size=BATCH, crash_marker=str(marker))
    assert marker.exists()  # an actor killed its own process on its first batch; its task ran again
    # Every passage once, in its place: a lost row would be missing, a duplicated or swapped one would differ.
    assert got.shape == expected.shape == (len(TEXTS), 32)
    assert np.array_equal(got, expected), float(np.abs(got - expected).max())
    if cluster is not None:
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
