"""mlm: continued masked-LM pretraining of the base's transformer on paragraph text alone (no questions)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.errors import BenchError
from bench.train import trainer as hf
from bench.train.corpus import Job, paragraph_corpus

DEFAULTS = {"max_seq_length": 128, "epochs": 1, "batch_size": 16, "lr": 5e-5, "mlm_probability": 0.15,
            "freeze_embeddings": False, "heldout_every": 20, "heldout_masks": 4, "max_texts": None, "head_steps": 0,
            "head_lr": 1e-3}

LEAKAGE_NOTE = ("MLM reads paragraph text only; paragraphs equal to an evaluation task's (e.g. the drug leaflets) are "
                "unsupervised domain adaptation, no questions or labels")


def prepare(job: Job):
    """((training texts, held-out texts), no questions, every paragraph)."""
    corpus = paragraph_corpus(job)
    params = job.params
    if len(corpus) < 2:
        raise BenchError(f"train.data of '{job.entry.name}': empty corpus (found {len(corpus)} paragraph(s); need 2 or more)")
    # Held out by a hash of the text, so the slice is the same across runs and seeds.
    every = max(2, int(params["heldout_every"]))
    held = [t for t in corpus if int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) % every == 0] or corpus[:1]
    train_texts = [t for t in corpus if t not in set(held)]
    if params.get("max_texts"):
        import random

        train_texts = random.Random(job.seed).sample(train_texts, min(len(train_texts), int(params["max_texts"])))
    job.params["leakage_note"] = LEAKAGE_NOTE
    return (train_texts, held), [], corpus


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


def train(base: str, texts: list[str], heldout: list[str], out: Path, params: dict, seed: int) -> dict:
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
        hf.freeze_embeddings(head_model)

    def tokenized(rows: list[str]) -> Dataset:
        return Dataset.from_dict({"text": rows}).map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=int(params["max_seq_length"]),
                                return_special_tokens_mask=True), batched=True, remove_columns=["text"])

    collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=float(params["mlm_probability"]))
    # Each held-out text is scored under several mask draws: one draw of 15% of a short text masks a handful of
    # tokens, too few for the before/after comparison on a small held-out set (a one-text set once drew no mask: NaN).
    masks = max(1, int(params["heldout_masks"]))
    trainer = Trainer(model=_masked_only(head_model),
                      args=hf.args(TrainingArguments, out, params, seed),
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
        hf.freeze_embeddings(head_model)
    before = heldout_loss()  # the base encoder's own MLM loss, once the new head fits it
    trainer.train()
    after = heldout_loss()
    with torch.no_grad():
        encoder.load_state_dict(head_model.base_model.state_dict(), strict=False)  # keeps the base's pooler, if any
    st.save(str(out))
    import math

    return {**hf.finish(trainer, out), **head, "heldout_texts": len(heldout), "heldout_masks": masks,
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
    warm = Trainer(model=_masked_only(model), args=hf.args(TrainingArguments, out, {**params, "max_steps": steps, "lr": params["head_lr"]},
                                           seed), train_dataset=data, data_collator=collator)
    warm.train()
    for p in model.base_model.parameters():
        p.requires_grad_(True)
    return {"head_steps": steps, "head_losses": hf.losses(warm)}
