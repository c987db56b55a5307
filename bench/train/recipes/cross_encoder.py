"""cross-encoder: a one-logit re-ranker from the base's transformer, on positives and BM25-mined negatives."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.train import trainer as hf
from bench.train.corpus import Job, mined

DEFAULTS = {"max_seq_length": 256, "epochs": 1, "batch_size": 16, "lr": 2e-5, "freeze_embeddings": False,
            "max_pairs": None, "negatives": 3, "exclude_eval_questions": False}


def prepare(job: Job):
    """((question, passage, label) rows: each positive, then its negatives), training questions, paragraphs."""
    found = mined(job)
    rows = []
    for q, pos, negs in found:
        rows += [(q, pos, 1.0)] + [(q, n, 0.0) for n in negs]
    return (rows,), [q for q, _, _ in found], [d["text"] for d in job.conv.corpus.values()]


def train(base: str, rows: list[tuple[str, str, float]], out: Path, params: dict, seed: int) -> dict:
    """A one-logit re-ranker from the base's transformer, binary cross-entropy on positives and mined negatives."""
    from datasets import Dataset
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers import set_seed

    set_seed(seed)
    # The base is a sentence-transformers folder (transformer + pooling); a CrossEncoder wants a plain transformer
    # folder, so the encoder is written out first and a classification head (random init) put on it.
    st = SentenceTransformer(base, device="cpu", local_files_only=True)
    plain = out / "_base"
    st[0].auto_model.save_pretrained(plain)
    st.tokenizer.save_pretrained(plain)
    del st
    model = CrossEncoder(str(plain), num_labels=1, max_length=int(params["max_seq_length"]), device="cpu",
                         local_files_only=True)
    pooler = _usable_pooler(model.model)
    if params["freeze_embeddings"]:
        hf.freeze_embeddings(model.model.base_model)
    data = Dataset.from_dict({"query": [r[0] for r in rows], "passage": [r[1] for r in rows],
                              "label": [float(r[2]) for r in rows]})
    trainer = CrossEncoderTrainer(model=model, args=hf.args(CrossEncoderTrainingArguments, out, params, seed),
                                  train_dataset=data, loss=BinaryCrossEntropyLoss(model))
    trainer.train()
    model.save_pretrained(str(out))
    shutil.rmtree(plain, ignore_errors=True)
    return {**hf.finish(trainer, out), "loss": "BinaryCrossEntropyLoss", "examples": len(rows),
            "positives": sum(1 for r in rows if r[2] > 0), "pooler": pooler}


def _usable_pooler(head_model) -> str:
    """Re-initialise a pooler whose weights are all zero; say which pooler the classifier reads.

    The classification head reads the pooler's output. A mean-pooling bi-encoder may carry no trained pooler:
    the Q4-dequantized e5 gets zeros (bench.models.q4_convert). Then the classifier sees tanh(0) = 0 for every
    pair and the encoder gets no gradient: the 2-core cross-encoder trained before this check output one constant.
    """
    import torch

    pooler = getattr(head_model.base_model, "pooler", None)
    if pooler is None:
        return "none (the classifier reads the first token)"
    if any(bool(w.any()) for w in pooler.parameters()):
        return "the base's"
    std = float(getattr(head_model.config, "initializer_range", 0.02))
    # Not head_model._init_weights: transformers marks weights loaded from the checkpoint as initialised and its
    # init functions then skip them, so the zeros would stay (checked on the e5 base).
    with torch.no_grad():
        for module in pooler.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.normal_(0.0, std)
                if module.bias is not None:
                    module.bias.zero_()
    return f"re-initialised (normal, std {std}, bias zero): the base's was all zeros"
