"""contrastive: (question, positive, hard negative) triples from the train side's pairs, BM25-mined negatives."""

from __future__ import annotations

from pathlib import Path

from bench.train import trainer as hf
from bench.train.corpus import Job, base_prefixes, mined

DEFAULTS = {"max_seq_length": 128, "epochs": 1, "batch_size": 16, "lr": 2e-5, "freeze_embeddings": False,
            "max_pairs": None, "negatives": 1, "cached_minibatch": None, "exclude_eval_questions": False}


def triples(job: Job) -> tuple[list[tuple[str, str, str]], list[str], list[str]]:
    """((prefixed question, positive, first negative) triples, training questions, training paragraphs)."""
    rows = mined(job)
    qp, pp = base_prefixes(job.entry, job.by_name)
    return ([(qp + q, pp + pos, pp + negs[0]) for q, pos, negs in rows], [q for q, _, _ in rows],
            [d["text"] for d in job.conv.corpus.values()])


def prepare(job: Job):
    found, questions, paragraphs = triples(job)
    return (found,), questions, paragraphs


def train(base: str, triples: list[tuple[str, str, str]], out: Path, params: dict, seed: int) -> dict:
    """(query, positive, hard negative) triples, in-batch negatives too, no duplicate texts within a batch."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import (CachedMultipleNegativesRankingLoss,
                                                                   MultipleNegativesRankingLoss)
    from transformers import set_seed

    set_seed(seed)
    model = SentenceTransformer(base, device="cpu", local_files_only=True)
    model.max_seq_length = int(params["max_seq_length"])
    if params["freeze_embeddings"]:
        hf.freeze_embeddings(model[0].auto_model)
    data = Dataset.from_dict({"anchor": [t[0] for t in triples], "positive": [t[1] for t in triples],
                              "negative": [t[2] for t in triples]})
    mini = params.get("cached_minibatch")
    loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=int(mini)) if mini else MultipleNegativesRankingLoss(model)
    args = hf.args(SentenceTransformerTrainingArguments, out, params, seed, batch_sampler=BatchSamplers.NO_DUPLICATES)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
    trainer.train()
    model.save(str(out))
    return {**hf.finish(trainer, out), "loss": type(loss).__name__, "examples": len(triples)}
