"""The recipes, each on the ecosystem's own trainer (static-distill and static-tune: model2vec's distillation and
trainers); each returns what training.json records.

Every recipe writes a loadable model folder into `out` (a temporary folder the caller renames into place) and
returns {steps, losses, ...}. Text preparation (split, negatives, leakage) happens in bench.train.build.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.train import trim

DEFAULTS = {
    "mlm": {"max_seq_length": 128, "epochs": 1, "batch_size": 16, "lr": 5e-5, "mlm_probability": 0.15,
            "freeze_embeddings": False, "heldout_every": 20, "heldout_masks": 4, "max_texts": None, "head_steps": 0,
            "head_lr": 1e-3},
    "contrastive": {"max_seq_length": 128, "epochs": 1, "batch_size": 16, "lr": 2e-5, "freeze_embeddings": False,
                    "max_pairs": None, "negatives": 1, "cached_minibatch": None, "exclude_eval_questions": False},
    "cross-encoder": {"max_seq_length": 256, "epochs": 1, "batch_size": 16, "lr": 2e-5, "freeze_embeddings": False,
                      "max_pairs": None, "negatives": 3, "exclude_eval_questions": False},
    # No optimizer: one teacher forward pass per kept token (bench.train.distill).
    "static-distill": {"pca_dims": 256, "trim": True, "vocabulary_size": 0, "min_count": 3, "sif_coefficient": 1e-4,
                       "weighting": "zipf"},
    # A static model fitted to its teacher's embeddings of the training texts (fit_*), then trained on the
    # question-paragraph pairs with in-batch negatives (pairs_*): model2vec's own trainers (bench.train.distill).
    # ict_sentences > 0 adds that many inverse-cloze pairs per leaflet passage (bench.train.ict), sentence kept in
    # its passage with probability ict_keep.
    "static-tune": {"teacher": None, "fit_epochs": 30, "fit_lr": 1e-3, "pairs_epochs": 5, "pairs_lr": 1e-3,
                    "temperature": 0.05, "batch_size": 64, "patience": 3, "max_seq_length": 256,
                    "exclude_eval_questions": True, "ict_sentences": 0, "ict_keep": 0.1},
    "trim-vocab": trim.DEFAULTS,
    # Layer-pruned student: the teacher's layers `layers` (by index), MSE to the teacher's embeddings on the
    # training texts (distill_*), then the contrastive recipe with the other keys.
    "prune": {"layers": None, "distill_epochs": 1, "distill_lr": 1e-4, "distill_batch_size": 64, "max_seq_length": 256,
              "epochs": 1, "batch_size": 16, "lr": 2e-5, "freeze_embeddings": True, "max_pairs": None, "negatives": 1,
              "cached_minibatch": None, "exclude_eval_questions": False},
    # Weight-space ensemble (WiSE-FT, Wortsman et al. 2022): `weight` of the base entry's weights, the rest from
    # the entry named by `with` (e.g. the model it was fine-tuned from). No gradient steps.
    "merge": {"with": None, "weight": 0.5},
}


def params_for(recipe: str, given: dict, max_steps: int | None) -> dict:
    from bench.errors import BenchError

    unknown = sorted(set(given) - set(DEFAULTS[recipe]) - {"max_steps"})
    if unknown:
        raise BenchError(f"train.params.{unknown[0]}: unknown for recipe '{recipe}' "
                         f"(allowed: {', '.join(sorted(DEFAULTS[recipe]))}, max_steps)")
    params = {**DEFAULTS[recipe], "max_steps": None, **given}
    if max_steps is not None:  # --max-steps: a quick build, recorded as such in training.json
        params["max_steps"] = max_steps
    return params


def _args(cls, out: Path, params: dict, seed: int, **extra):
    steps = params.get("max_steps")
    return cls(output_dir=str(out / "_trainer"), seed=seed, data_seed=seed, learning_rate=float(params["lr"]),
               per_device_train_batch_size=int(params["batch_size"]), num_train_epochs=float(params["epochs"]),
               max_steps=int(steps) if steps else -1, logging_steps=1, save_strategy="no", report_to="none",
               disable_tqdm=False, dataloader_num_workers=0, **extra)


def _losses(trainer) -> list[float]:
    return [round(float(h["loss"]), 6) for h in trainer.state.log_history if "loss" in h]


def _finish(trainer, out: Path) -> dict:
    shutil.rmtree(out / "_trainer", ignore_errors=True)
    losses = _losses(trainer)
    return {"steps": int(trainer.state.global_step), "losses": losses, "final_loss": losses[-1] if losses else None}


def _masked_only(head_model):
    """The MLM model with logits computed at the masked positions only.

    BertForMaskedLM projects every position onto the 250k-token vocabulary; with 15% of tokens masked, 85% of that
    projection (most of a step's arithmetic on two cores) is thrown away by the loss. Same loss, same weights."""
    import torch

    if not hasattr(head_model, "cls"):  # not a BERT-style head: the library's own forward
        return head_model

    class MaskedPositionsOnly(torch.nn.Module):
        def __init__(self, mlm):
            super().__init__()
            self.mlm = mlm

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None):
            hidden = self.mlm.base_model(input_ids=input_ids, attention_mask=attention_mask,
                                         token_type_ids=token_type_ids)[0]
            picked = labels != -100
            if not picked.any():  # a batch where the collator masked nothing: no loss, rather than a NaN step
                return {"loss": hidden.sum() * 0.0}
            logits = self.mlm.cls(hidden[picked])
            return {"loss": torch.nn.functional.cross_entropy(logits.float(), labels[picked])}

    return MaskedPositionsOnly(head_model)


def _freeze_embeddings(encoder) -> None:
    # The 250k-token embedding matrix is most of e5-small's weights: freezing it saves most of the optimizer work.
    encoder.get_input_embeddings().weight.requires_grad_(False)


def mlm(base: str, texts: list[str], heldout: list[str], out: Path, params: dict, seed: int) -> dict:
    """Continued masked-LM pretraining of the base's transformer; saved with the base's pooling/normalize modules."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments, set_seed

    set_seed(seed)
    st = SentenceTransformer(base, device="cpu", local_files_only=True)
    encoder, tokenizer = st[0].auto_model, st.tokenizer
    # The base folder carries the encoder only. The head comes from the same config: its transform (dense + LayerNorm)
    # is initialised by transformers' _init_weights (normal, std initializer_range; LayerNorm 1/0), its decoder is the
    # input embedding matrix itself (tied), its bias zero.
    head_model = AutoModelForMaskedLM.from_config(encoder.config)
    missing, _ = head_model.base_model.load_state_dict(encoder.state_dict(), strict=False)
    if missing:
        raise RuntimeError(f"MLM model does not take the base's weights: missing {missing[:3]}")
    head_model.tie_weights()
    tied = head_model.get_output_embeddings().weight is head_model.get_input_embeddings().weight
    if params["freeze_embeddings"]:
        _freeze_embeddings(head_model)

    def tokenized(rows: list[str]) -> Dataset:
        return Dataset.from_dict({"text": rows}).map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=int(params["max_seq_length"]),
                                return_special_tokens_mask=True), batched=True, remove_columns=["text"])

    collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=float(params["mlm_probability"]))
    # Each held-out text is scored under several mask draws: one draw of 15% of a short text masks a handful of
    # tokens, too few for the before/after comparison on a small held-out set (a one-text set once drew no mask: NaN).
    masks = max(1, int(params["heldout_masks"]))
    trainer = Trainer(model=_masked_only(head_model),
                      args=_args(TrainingArguments, out, params, seed),
                      train_dataset=tokenized(texts), data_collator=collator)

    held = tokenized(heldout * masks)

    def heldout_loss() -> float:
        # Mean over all masked tokens (Trainer.evaluate averages per-batch means, which weights a batch of short
        # texts like a batch of long ones). The same seed gives the same masks before and after.
        set_seed(seed)
        model = trainer.model.eval()
        device = next(model.parameters()).device
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(held), 16):
                batch = collator([held[i] for i in range(start, min(start + 16, len(held)))])
                batch.pop("special_tokens_mask", None)
                n = int((batch["labels"] != -100).sum())
                if n:
                    result = model(**{k: v.to(device) for k, v in batch.items()})
                    total += float(result["loss"]) * n
                    count += n
        model.train()
        if not count:
            raise RuntimeError("held-out MLM loss: no token was masked in the held-out texts")
        return round(total / count, 6)

    initial = heldout_loss()
    head = _fit_head(head_model, tokenized(texts), collator, out, params, seed)
    if params["freeze_embeddings"]:
        _freeze_embeddings(head_model)
    before = heldout_loss()  # the base encoder's own MLM loss, once the new head fits it
    trainer.train()
    after = heldout_loss()
    with torch.no_grad():
        encoder.load_state_dict(head_model.base_model.state_dict(), strict=False)  # keeps the base's pooler, if any
    st.save(str(out))
    import math

    return {**_finish(trainer, out), **head, "heldout_texts": len(heldout), "heldout_masks": masks,
            "heldout_mlm_loss_random_head": initial,
            "heldout_mlm_loss_before": before,
            "heldout_mlm_loss_after": after, "heldout_perplexity_before": round(math.exp(before), 3),
            "heldout_perplexity_after": round(math.exp(after), 3),
            "mlm_head": f"{type(head_model).__name__}: transform from _init_weights (std "
                        f"{encoder.config.initializer_range}), decoder tied to input embeddings: {tied}, bias zero"}


def _fit_head(model, data, collator, out: Path, params: dict, seed: int) -> dict:
    """First train the new head alone (encoder frozen, higher rate): a random head's gradients would otherwise
    scramble the pretrained encoder in the first steps of the real run."""
    from transformers import Trainer, TrainingArguments

    steps = int(params["head_steps"])
    if not steps:
        return {"head_steps": 0}
    for p in model.base_model.parameters():  # the tied decoder weight is the embedding matrix: frozen with it
        p.requires_grad_(False)
    warm = Trainer(model=_masked_only(model), args=_args(TrainingArguments, out, {**params, "max_steps": steps, "lr": params["head_lr"]},
                                           seed), train_dataset=data, data_collator=collator)
    warm.train()
    for p in model.base_model.parameters():
        p.requires_grad_(True)
    return {"head_steps": steps, "head_losses": _losses(warm)}


def contrastive(base: str, triples: list[tuple[str, str, str]], out: Path, params: dict, seed: int) -> dict:
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
        _freeze_embeddings(model[0].auto_model)
    data = Dataset.from_dict({"anchor": [t[0] for t in triples], "positive": [t[1] for t in triples],
                              "negative": [t[2] for t in triples]})
    mini = params.get("cached_minibatch")
    loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=int(mini)) if mini else MultipleNegativesRankingLoss(model)
    args = _args(SentenceTransformerTrainingArguments, out, params, seed, batch_sampler=BatchSamplers.NO_DUPLICATES)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
    trainer.train()
    model.save(str(out))
    return {**_finish(trainer, out), "loss": type(loss).__name__, "examples": len(triples)}


def cross_encoder(base: str, rows: list[tuple[str, str, float]], out: Path, params: dict, seed: int) -> dict:
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
        _freeze_embeddings(model.model.base_model)
    data = Dataset.from_dict({"query": [r[0] for r in rows], "passage": [r[1] for r in rows],
                              "label": [float(r[2]) for r in rows]})
    trainer = CrossEncoderTrainer(model=model, args=_args(CrossEncoderTrainingArguments, out, params, seed),
                                  train_dataset=data, loss=BinaryCrossEntropyLoss(model))
    trainer.train()
    model.save_pretrained(str(out))
    shutil.rmtree(plain, ignore_errors=True)
    return {**_finish(trainer, out), "loss": "BinaryCrossEntropyLoss", "examples": len(rows),
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


def prune(base: str, texts: list[str], triples: list[tuple[str, str, str]], out: Path, params: dict, seed: int) -> dict:
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
    teacher = SentenceTransformer(base, device="cuda" if cuda() else "cpu", local_files_only=True)
    teacher.max_seq_length = int(params["max_seq_length"])
    # The targets are the teacher's own embeddings of the prefixed texts, as it would encode them at search time.
    targets = teacher.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
    del teacher
    if params["freeze_embeddings"]:
        _freeze_embeddings(student[0].auto_model)
    data = Dataset.from_dict({"text": texts, "label": targets.tolist()})
    stage = {**params, "epochs": params["distill_epochs"], "lr": params["distill_lr"],
             "batch_size": params["distill_batch_size"]}
    trainer = SentenceTransformerTrainer(model=student, args=_args(SentenceTransformerTrainingArguments, out, stage, seed),
                                         train_dataset=data, loss=MSELoss(student))
    trainer.train()
    distilled = _finish(trainer, out)
    first = out / "_distilled"
    student.save(str(first), create_model_card=False)
    del student, trainer
    if float(params["epochs"]) > 0:
        result = contrastive(str(first), triples, out, params, seed)
    else:  # distillation only: the student is the teacher's copy, and keeps its breadth
        shutil.copytree(first, out, dirs_exist_ok=True)
        result = {**distilled, "loss": "MSELoss", "examples": len(texts)}
    shutil.rmtree(first, ignore_errors=True)
    return {**result, "layers_kept": [int(i) for i in params["layers"]], "distill_steps": distilled["steps"],
            "distill_losses": distilled["losses"], "distill_final_loss": distilled["final_loss"],
            "distill_texts": len(texts)}


def merge(base: str, other: str, out: Path, params: dict, seed: int) -> dict:
    """weight * base + (1 - weight) * other, tensor by tensor; the two must share an architecture."""
    import torch
    from sentence_transformers import SentenceTransformer

    from bench.errors import BenchError

    w = float(params["weight"])
    if not 0.0 <= w <= 1.0:
        raise BenchError(f"train.params.weight: {w} must be between 0 and 1")
    model = SentenceTransformer(base, device="cpu", local_files_only=True)
    theirs = SentenceTransformer(other, device="cpu", local_files_only=True)[0].auto_model.state_dict()
    mine = model[0].auto_model.state_dict()
    if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
        raise BenchError(f"train.params.with: '{params['with']}' does not have the base's architecture "
                         "(different tensors or shapes); merge needs two fine-tunings of one model")
    with torch.no_grad():
        model[0].auto_model.load_state_dict({k: (w * v + (1 - w) * theirs[k]) if v.is_floating_point() else v
                                             for k, v in mine.items()})
    model.save(str(out), create_model_card=False)
    return {"steps": 0, "losses": [], "final_loss": None, "merged_with": params["with"], "weight": w}


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def static_distill(base: str, texts: list[str], out: Path, params: dict, seed: int) -> dict:
    """A model2vec static model distilled from the base (the teacher); see bench.train.distill."""
    from bench.train.distill import static_distill as distil

    return distil(base, texts, out, params, seed)


def static_tune(base: str, teacher, fit_texts, pairs, out: Path, params: dict, seed: int) -> dict:
    """The base static model tuned on its teacher's embeddings, then on pairs; see bench.train.distill."""
    from bench.train.distill import static_tune as tune

    return tune(base, teacher, fit_texts, pairs, out, params, seed)


def trim_vocab(base: str, corpus: list[str], evaluation: dict, sources: dict, out: Path, params: dict,
               seed: int) -> dict:
    """No gradient steps: the base with a Turkish-trimmed vocabulary (bench.train.trim)."""
    return trim.trim_vocab(base, corpus, evaluation, sources, out, params, seed)
