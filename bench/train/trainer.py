"""What the gradient recipes share around the ecosystem's trainers: their arguments, the losses they log, the
frozen embedding matrix, and whether a GPU is there."""

from __future__ import annotations

import shutil
from pathlib import Path


def args(cls, out: Path, params: dict, seed: int, **extra):
    """`cls` (TrainingArguments or a sentence-transformers subclass) from a recipe's params."""
    steps = params.get("max_steps")
    return cls(output_dir=str(out / "_trainer"), seed=seed, data_seed=seed, learning_rate=float(params["lr"]),
               per_device_train_batch_size=int(params["batch_size"]), num_train_epochs=float(params["epochs"]),
               max_steps=int(steps) if steps else -1, logging_steps=1, save_strategy="no", report_to="none",
               disable_tqdm=False, dataloader_num_workers=0, **extra)


def losses(trainer) -> list[float]:
    return [round(float(h["loss"]), 6) for h in trainer.state.log_history if "loss" in h]


def finish(trainer, out: Path) -> dict:
    shutil.rmtree(out / "_trainer", ignore_errors=True)
    logged = losses(trainer)
    return {"steps": int(trainer.state.global_step), "losses": logged, "final_loss": logged[-1] if logged else None}


def freeze_embeddings(encoder) -> None:
    # The 250k-token embedding matrix is most of e5-small's weights: freezing it saves most of the optimizer work.
    encoder.get_input_embeddings().weight.requires_grad_(False)


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()
