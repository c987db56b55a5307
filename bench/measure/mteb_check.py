"""Cross-check: run a candidate through mteb's own pipeline (`mteb.evaluate` on a custom retrieval task over
the same corpus, queries and qrels) and compare with the figures `bench run` reports."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.measure import evaluate as bench_eval
from bench.data.retrieval import RetrievalData

METRICS = ("ndcg_at_10", "mrr_at_10", "recall_at_1", "recall_at_5", "recall_at_10")


def make_task(data: RetrievalData, language: str = "tur-Latn"):
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
    from mteb.abstasks.task_metadata import TaskMetadata

    # The title is folded into the text exactly as `bench` embeds it, so both sides see identical inputs.
    split = RetrievalSplitData(
        corpus=Dataset.from_list([{"id": d, "text": data.doc_text(d)} for d in data.corpus]),
        queries=Dataset.from_list([{"id": q, "text": t} for q, t in data.queries.items()]),
        relevant_docs=data.qrels,
        top_ranked=None,
    )

    class BenchTask(AbsTaskRetrieval):
        metadata = TaskMetadata(
            name=f"Bench_{data.name}", type="Retrieval", main_score="ndcg_at_10",
            description=f"bench task {data.name}", reference="https://example.invalid/bench",
            dataset={"path": "local", "revision": "local"}, category="t2t", eval_splits=["test"],
            eval_langs=[language], date=("2020-01-01", "2026-01-01"), dialect=["Written"], domains=[],
            task_subtypes=[], license="cc-by-4.0", annotations_creators="derived", modalities=["text"],
            sample_creation="found", bibtex_citation="",
        )

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            self.dataset = {"default": {"test": split}}
            self.data_loaded = True

    return BenchTask()


class _DenseForMteb:
    """mteb's EncoderProtocol over a bench dense encoder (same prefixes, same cache)."""

    def __init__(self, candidate):
        from mteb.models.model_meta import ModelMeta

        self.candidate = candidate
        self.mteb_model_meta = ModelMeta.create_empty()

    def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs):
        texts = [t for batch in inputs for t in batch["text"]]
        role = "query" if prompt_type is not None and prompt_type.value == "query" else "passage"
        return self.candidate.encode(texts, role, progress=False)

    def similarity(self, a, b):
        import torch

        return torch.from_numpy(np.asarray(a) @ np.asarray(b).T)

    def similarity_pairwise(self, a, b):
        import torch

        return torch.from_numpy((np.asarray(a) * np.asarray(b)).sum(-1))


class _LexicalForMteb:
    """mteb's SearchProtocol over bench's BM25."""

    def __init__(self, candidate):
        from mteb.models.model_meta import ModelMeta

        self.candidate = candidate
        self.mteb_model_meta = ModelMeta.create_empty()

    def index(self, corpus, **kwargs):
        self.doc_ids = list(corpus["id"])
        self.index_ = self.candidate.bm25.index(list(corpus["text"]))

    def search(self, queries, *, top_k, **kwargs):
        scores = self.candidate.bm25.scores(list(queries["text"]), [], index=self.index_)
        return dict(zip(queries["id"], bench_eval.top_k(scores, self.doc_ids, top_k)))


def run_mteb(candidate, data: RetrievalData, language: str = "tur-Latn") -> dict[str, float]:
    import mteb

    model = _LexicalForMteb(candidate) if candidate.kind == "lexical" else _DenseForMteb(candidate)
    result = mteb.evaluate(model, make_task(data, language), cache=None, show_progress_bar=False)
    return dict(result.task_results[0].scores["test"][0])


def compare(candidate, data: RetrievalData, language: str = "tur-Latn") -> list[list]:
    ours = bench_eval.evaluate(candidate, data).metrics
    theirs = run_mteb(candidate, data, language)
    return [[candidate.entry.name, m, ours[m], theirs[m], abs(ours[m] - theirs[m])] for m in METRICS]
