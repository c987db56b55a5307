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


def test_rerank_with_rrf_fuses_both_stages_ranks_within_the_top_k():
    # first stage ranks a b c d; the re-ranker alone would put c first. RRF of the two ranks within the top 3:
    # a 1/(k+1)+1/(k+3), b 1/(k+2)+1/(k+2), c 1/(k+3)+1/(k+1): a and c tie, the first stage breaks it.
    first = Fixed([[5.0, 4.0, 3.0, 2.0]])
    second = Fixed([[0.1, 0.5, 0.9, 0.95]])
    rr = pipelines.Rerank(None, "x", first, second, top_k=3, fusion="rrf")
    got = rr.scores(["q"], ["a", "b", "c", "d"])[0]
    assert list(np.argsort(-got, kind="stable")) == [0, 2, 1, 3]
    assert np.allclose(rr.search(rr.index(["a", "b", "c", "d"]), "q"), got)
    # the plain re-ranker on the same input trusts the second stage alone
    plain = pipelines.Rerank(None, "x", first, second, top_k=3).scores(["q"], ["a", "b", "c", "d"])[0]
    assert list(np.argsort(-plain, kind="stable")) == [2, 1, 0, 3]


@pytest.mark.parametrize("loader, expected", [("rerank", "rrf"), ("hybrid", "rrf or score")])
def test_pipeline_fusion_is_checked_when_the_registry_loads(tmp_path, loader, expected):
    from bench.errors import BenchError
    from bench.models import registry

    path = tmp_path / "m.yaml"
    path.write_text(f"""models:
  - {{name: a, kind: lexical, loader: bm25, source: bm25s}}
  - {{name: b, kind: lexical, loader: bm25, source: bm25s}}
  - {{name: p, kind: pipeline, loader: {loader}, stages: [a, b], options: {{fusion: rff}}}}
""", encoding="utf-8")
    with pytest.raises(BenchError, match=rf"models\[2\] 'p': field 'options.fusion' is 'rff', expected {expected}$"):
        registry.load_registry(path)


def test_reciprocal_rank_fusion():
    a = np.array([3.0, 2.0, 1.0])  # ranks 1, 2, 3
    b = np.array([1.0, 3.0, 2.0])  # ranks 3, 1, 2
    got = pipelines.fuse([a, b], "rrf", 0.5)
    k = pipelines.RRF_K
    assert got == pytest.approx([1 / (k + 1) + 1 / (k + 3), 1 / (k + 2) + 1 / (k + 1), 1 / (k + 3) + 1 / (k + 2)])


def test_score_fusion_normalises_each_part():
    got = pipelines.fuse([np.array([10.0, 0.0, 5.0]), np.array([0.2, 0.4, 0.3])], "score", 0.75)
    assert got == pytest.approx([0.25 * 1 + 0.75 * 0, 0.25 * 0 + 0.75 * 1, 0.25 * 0.5 + 0.75 * 0.5])


@pytest.mark.slow
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


class CountingCE:
    """A cross-encoder stage whose pair scores are the passage length; counts the pairs it really scores."""

    kind = "cross-encoder"

    def __init__(self):
        self.scored = 0

    def _score(self, pairs):
        self.scored += len(pairs)
        return np.array([float(len(p)) for _, p in pairs], np.float32)

    def pair_scores(self, query, passages):
        return self._score([(query, p) for p in passages])

    def score_pairs(self, pairs):
        return self._score(pairs)


def test_rerank_quality_run_scores_all_pairs_in_one_call_and_matches_search():
    first = Fixed([[5.0, 4.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    ce = CountingCE()
    rr = pipelines.Rerank(None, "x", first, ce, top_k=2)
    docs = ["a", "bbbb", "cc", "ddd"]
    got = rr.scores(["q1", "q2"], docs)
    assert ce.scored == 4  # top 2 of each question, nothing else
    assert list(np.argsort(-got[0]))[:2] == [1, 0]  # "bbbb" is longer than "a"


def _counted_cross_encoder(model_dir, tmp_path, monkeypatch):
    """The tiny cross-encoder loaded through the registry, with its cache in tmp_path, and the size of every
    predict() call it makes."""
    from bench.models import encoders, registry

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "m.yaml"
    path.write_text(f"models:\n  - name: ce\n    kind: cross-encoder\n    loader: sentence-transformers\n"
                    f"    source: {model_dir}\n", encoding="utf-8")
    stage = encoders.load_cross_encoder(registry.load_registry(path)[0])
    calls = []
    real = stage.model.predict
    monkeypatch.setattr(stage.model, "predict", lambda pairs, **kw: calls.append(len(pairs)) or real(pairs, **kw))
    return stage, calls


def test_cross_encoder_pair_scores_are_cached_for_the_quality_run_only(tiny_cross_encoder_dir, tmp_path, monkeypatch):
    """Two pipelines re-ranking overlapping candidates score each (question, passage) pair once; the search path
    (which the speed phase times) never reads the cache."""
    stage, calls = _counted_cross_encoder(tiny_cross_encoder_dir, tmp_path, monkeypatch)
    pairs = [("Van Gölü nerede?", "Van Gölü Doğu Anadolu'dadır."), ("Ankara?", "Ankara başkenttir.")]
    first = stage.score_pairs(pairs)
    again = stage.score_pairs(pairs[::-1])
    assert sum(calls) == 2 and np.allclose(again, first[::-1])
    stage.pair_scores(*pairs[0][:1], [pairs[0][1]])
    assert sum(calls) == 3


def test_a_pair_scores_the_same_whatever_else_is_scored_with_it(tiny_cross_encoder_dir, tmp_path, monkeypatch):
    """A pipeline's row must not depend on which other pairs were scored beside its own (another pipeline's, cached
    earlier): scores padded into a batch with longer pairs move in the last bits, enough to reorder near-ties."""
    # The tiny model's sums do not move with padding as a 12-layer one's do (about 3e-8 on the 2-core cross-encoder,
    # which reordered a row), so the call pattern is checked too: one pair per forward pass, nothing padded.
    stage, calls = _counted_cross_encoder(tiny_cross_encoder_dir, tmp_path, monkeypatch)
    q = "Van Gölü nerede?"
    short = ["Van Gölü Doğu Anadolu'dadır.", "Göl sodalıdır."]
    long = " ".join(["Van Gölü Türkiye'nin en büyük gölüdür ve denizden yüksektedir."] * 12)
    alone = stage.pair_scores(q, short)
    assert np.array_equal(stage.pair_scores(q, short + [long])[:2], alone)
    assert np.array_equal(stage.score_pairs([(q, p) for p in [long] + short])[1:], alone)
    assert set(calls) == {1}
