from bench.models import encoders, registry
from bench.measure import mteb_check
from bench.data import tasks


def test_bench_figures_match_mteb_evaluate(tiny_registry, tiny_task):
    data = tasks.load(tasks.load_spec(tiny_task))
    for name in ("bm25", "tiny"):
        entry = next(e for e in registry.load_registry(tiny_registry) if e.name == name)
        rows = mteb_check.compare(encoders.load(entry), data)
        assert len(rows) == 5
        for model, metric, ours, theirs, diff in rows:
            assert diff <= 1e-4, (model, metric, ours, theirs)
