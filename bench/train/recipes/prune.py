"""prune: a layer-pruned student of its base, distilled to the teacher's embeddings, then trained contrastively."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.data.retrieval import passages_of
from bench.train import trainer as hf
from bench.train.corpus import Job, base_prefixes
from bench.train.recipes import contrastive

# Layer-pruned student: the teacher's layers `layers` (by index), MSE to the teacher's embeddings on the
# training texts (distill_*), then the contrastive recipe with the other keys.
DEFAULTS = {"layers": None, "distill_epochs": 1, "distill_lr": 1e-4, "distill_batch_size": 64, "max_seq_length": 256,
            "epochs": 1, "batch_size": 16, "lr": 2e-5, "freeze_embeddings": True, "max_pairs": None, "negatives": 1,
            "cached_minibatch": None, "exclude_eval_questions": False}

LEAKAGE_NOTE = ("distillation reads the leaflet text the drug task searches (teacher embeddings, no questions or "
                "labels); the contrastive stage reads thquad train pairs only")


def prepare(job: Job):
    """((distillation texts, contrastive triples), training questions, training paragraphs and leaflet text)."""
    triples, questions, paragraphs = contrastive.triples(job)
    # Distillation reads every training text as the teacher would embed it: the questions, the paragraphs and
    # the leaflet text (teacher embeddings only, no labels).
    qp, pp = base_prefixes(job.entry, job.by_name)
    _, passages = passages_of(job.conv.corpus)
    distill = sorted({qp + q for q in job.conv.queries.values()} | {pp + p for p in passages + job.texts})
    job.params["leakage_note"] = LEAKAGE_NOTE
    return (distill, triples), questions, paragraphs + job.texts


def _keep_layers(encoder, layers: list[int]) -> None:
    import torch

    from bench.errors import BenchError

    blocks = encoder.encoder.layer
    bad = [i for i in layers if not 0 <= int(i) < len(blocks)]
    if not layers or bad or len(set(layers)) != len(layers):
        raise BenchError(f"train.params.layers: {layers!r} must list distinct layer indices of the teacher's "
                         f"{len(blocks)} layers (0..{len(blocks) - 1})")
    encoder.encoder.layer = torch.nn.ModuleList([blocks[int(i)] for i in layers])
    encoder.config.num_hidden_layers = len(layers)


def train(base: str, texts: list[str], triples: list[tuple[str, str, str]], out: Path, params: dict, seed: int) -> dict:
    """A student keeping `layers` of the teacher (initialised from them), distilled by MSE to the teacher's
    embeddings of the training texts (sentence-transformers' layer-reduction recipe), then trained contrastively."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MSELoss
    from transformers import set_seed

    set_seed(seed)
    student = SentenceTransformer(base, device="cpu", local_files_only=True)
    student.max_seq_length = int(params["max_seq_length"])
    _keep_layers(student[0].auto_model, list(params["layers"] or []))
    teacher = SentenceTransformer(base, device="cuda" if hf.cuda() else "cpu", local_files_only=True)
    teacher.max_seq_length = int(params["max_seq_length"])
    # The targets are the teacher's own embeddings of the prefixed texts, as it would encode them at search time.
    targets = teacher.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
    del teacher
    if params["freeze_embeddings"]:
        hf.freeze_embeddings(student[0].auto_model)
    data = Dataset.from_dict({"text": texts, "label": targets.tolist()})
    stage = {**params, "epochs": params["distill_epochs"], "lr": params["distill_lr"],
             "batch_size": params["distill_batch_size"]}
    trainer = SentenceTransformerTrainer(model=student, args=hf.args(SentenceTransformerTrainingArguments, out, stage, seed),
                                         train_dataset=data, loss=MSELoss(student))
    trainer.train()
    distilled = hf.finish(trainer, out)
    first = out / "_distilled"
    student.save(str(first), create_model_card=False)
    del student, trainer
    if float(params["epochs"]) > 0:
        result = contrastive.train(str(first), triples, out, params, seed)
    else:  # distillation only: the student is the teacher's copy, and keeps its breadth
        shutil.copytree(first, out, dirs_exist_ok=True)
        result = {**distilled, "loss": "MSELoss", "examples": len(texts)}
    shutil.rmtree(first, ignore_errors=True)
    return {**result, "layers_kept": [int(i) for i in params["layers"]], "distill_steps": distilled["steps"],
            "distill_losses": distilled["losses"], "distill_final_loss": distilled["final_loss"],
            "distill_texts": len(texts)}
