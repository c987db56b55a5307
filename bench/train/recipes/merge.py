"""merge: a weight-space ensemble of the base and the entry `with` names (WiSE-FT); no training text."""

from __future__ import annotations

from pathlib import Path

from bench.train.corpus import Job, base_folder, param_bi_encoder

# Weight-space ensemble (WiSE-FT, Wortsman et al. 2022): `weight` of the base entry's weights, the rest from
# the entry named by `with` (e.g. the model it was fine-tuned from). No gradient steps.
DEFAULTS = {"with": None, "weight": 0.5}

LEAKAGE_NOTE = "no training text: the merged model inherits what both parents read (see their training.json)"


def prepare(job: Job):
    other = param_bi_encoder(job, "with", "a transformer bi-encoder entry")
    job.params["leakage_note"] = LEAKAGE_NOTE
    return (base_folder(other),), [], []


def train(base: str, other: str, out: Path, params: dict, seed: int) -> dict:
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
