import numpy as np
import pytest

from bench.models import pipelines


class Fixed:
    """A stage whose scores are written by hand."""

    def __init__(self, matrix, kind="bi-encoder"):
        self.matrix, self.kind = np.asarray(matrix, dtype=np.float32), kind
        self.params = self.disk_bytes = None

    def scores(self, queries, docs):
        return self.matrix

    def index(self, docs):
        return None

    def search(self, state, query):
        return self.matrix[0]


def test_rerank_rescores_only_the_first_stage_top_k():
    first = Fixed([[5.0, 4.0, 3.0, 2.0]])
    second = Fixed([[0.1, 0.2, 0.9, 0.8]])
    got = pipelines.Rerank(None, "x", first, second, top_k=2).scores(["q"], ["a", "b", "c", "d"])[0]
    order = list(np.argsort(-got))
    # docs 0 and 1 are the first stage's top 2; the second stage puts 1 before 0; 2 and 3 keep first-stage order
    assert order == [1, 0, 2, 3]
    assert got[2] < 0 and got[3] < got[2]


def test_rerank_search_matches_scores():
    first, second = Fixed([[5.0, 4.0, 3.0]]), Fixed([[0.1, 0.9, 0.5]])
    rr = pipelines.Rerank(None, "x", first, second, top_k=3)
    assert np.allclose(rr.search(rr.index(["a", "b", "c"]), "q"), rr.scores(["q"], ["a", "b", "c"])[0])


def test_reciprocal_rank_fusion():
    a = np.array([3.0, 2.0, 1.0])  # ranks 1, 2, 3
    b = np.array([1.0, 3.0, 2.0])  # ranks 3, 1, 2
    got = pipelines.fuse([a, b], "rrf", 0.5)
    k = pipelines.RRF_K
    assert got == pytest.approx([1 / (k + 1) + 1 / (k + 3), 1 / (k + 2) + 1 / (k + 1), 1 / (k + 3) + 1 / (k + 2)])


def test_score_fusion_normalises_each_part():
    got = pipelines.fuse([np.array([10.0, 0.0, 5.0]), np.array([0.2, 0.4, 0.3])], "score", 0.75)
    assert got == pytest.approx([0.25 * 1 + 0.75 * 0, 0.25 * 0 + 0.75 * 1, 0.25 * 0.5 + 0.75 * 0.5])


def test_cross_encoder_pipeline_end_to_end(tiny_registry, tiny_task, tiny_cross_encoder_dir, tmp_path):
    """A tiny random cross-encoder built in a fixture, loaded through the same registry path users take."""
    from bench.models import encoders, registry
    from bench.measure import evaluate
    from bench.data import tasks

    path = tmp_path / "m.yaml"
    path.write_text(tiny_registry.read_text(encoding="utf-8") + f"""
  - name: tiny-ce
    kind: cross-encoder
    loader: sentence-transformers
    source: {tiny_cross_encoder_dir}
  - name: bm25 then tiny-ce
    kind: pipeline
    loader: rerank
    stages: [bm25, tiny-ce]
    options: {{top_k: 3}}
  - name: hybrid
    kind: pipeline
    loader: hybrid
    stages: ["bm25", "tiny [onnx-int8]"]
    options: {{fusion: rrf}}
""", encoding="utf-8")
    entries = {e.name: e for e in registry.load_registry(path)}
    assert entries["bm25 then tiny-ce"].variants == ["bm25s+torch-fp32"]
    assert entries["hybrid"].variants == ["bm25s+onnx-int8"]
    data = tasks.load(tasks.load_spec(tiny_task))
    for name in ("bm25 then tiny-ce", "hybrid"):
        cand = encoders.load(entries[name], entries[name].variants[0])
        m = evaluate.evaluate(cand, data).metrics
        assert 0 < m["ndcg_at_10"] <= 1
        state = cand.index([data.doc_text(d) for d in data.corpus])
        assert cand.search(state, "Van Gölü").shape == (len(data.corpus),)


def test_pipeline_naming_an_unknown_stage_is_a_registry_error(tmp_path):
    from bench.models import registry
    from bench.errors import BenchError

    path = tmp_path / "m.yaml"
    path.write_text("models:\n  - {name: p, kind: pipeline, loader: rerank, stages: [nope, other]}\n", encoding="utf-8")
    with pytest.raises(BenchError, match=r"models\[0\] 'p': stage 'nope' is not a registry entry"):
        registry.load_registry(path)
