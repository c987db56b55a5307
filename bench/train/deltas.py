"""The form a model trained elsewhere comes back in (bench.train.transfer): each tensor that training changed, as
per-row int8 deltas against the base it started from, new tensors (a classifier head) in full, and the folder's
small files; one xz tar per model, in parts no larger than one returned file, grouped into what one call brings
back."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

from bench.errors import BenchError

PART_BYTES = 16 * 1024 * 1024  # what one returned file may hold
BUNDLE_BYTES = 60 * 1024 * 1024  # what one call may bring back (64 MiB), less room for a log
BUNDLE_FILES = 7  # of the 8 files a call brings back, one left for a log
# Files that depend on the vocabulary or are rebuilt from the base: taken from the full-vocabulary base on unpack.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model",
                   "added_tokens.json")
SMALL_FILE_BYTES = 1 << 20
WORDS = "embeddings.word_embeddings.weight"  # frozen in training: the one tensor a vocabulary cut changes


def _reference_name(name: str, record: dict, base_keys: set) -> str | None:
    """The base tensor a trained tensor started from: the same name, less a head model's prefix (bert.), with a
    pruned student's layer i mapped to the teacher layer it was initialised from."""
    parts = name.split(".")
    candidates = [name] + ([".".join(parts[1:])] if len(parts) > 1 else [])
    kept = record.get("layers_kept")
    out = []
    for c in candidates:
        p = c.split(".")
        if kept and len(p) > 2 and p[0] == "encoder" and p[1] == "layer":
            p[2] = str(kept[int(p[2])])
        out.append(".".join(p))
    return next((c for c in out if c in base_keys), None)


def quantize_rows(delta):
    """Per-row symmetric int8: the error of each element is at most half its row's step (max |delta| / 127)."""
    import torch

    rows = delta.reshape(delta.shape[0], -1) if delta.dim() > 1 else delta.reshape(1, -1)
    scale = rows.abs().amax(dim=1).clamp_min(1e-12) / 127
    q = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(delta.shape), scale.float()


def dequantize_rows(q, scale):
    rows = q.reshape(q.shape[0], -1) if q.dim() > 1 else q.reshape(1, -1)
    return (rows.float() * scale[:, None]).reshape(q.shape)


def pack_one(folder: Path, base_state: dict) -> tuple[dict, dict]:
    """(tensors to ship, manifest) for one trained folder against the (fp32) state of the base it was trained from."""
    from safetensors.torch import load_file

    record = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    trained = load_file(str(folder / "model.safetensors"))
    words = base_state[WORDS]
    tensors, kinds = {}, {}
    for name, value in trained.items():
        ref = _reference_name(name, record, set(base_state))
        value = value.float()
        if ref is None or base_state[ref].shape != value.shape:
            if value.shape == words.shape:
                raise BenchError(f"{folder}: tensor {name} has the vocabulary's shape but no base counterpart")
            tensors[name] = value
            kinds[name] = "full"
            continue
        delta = value - base_state[ref]
        changed = bool(delta.abs().max() > 0)
        if changed and ref == WORDS:
            raise BenchError(f"{folder}: the word embeddings changed in training; transfer needs "
                             "params.freeze_embeddings: true")
        if not changed:
            kinds[name] = f"same:{ref}"
            continue
        q, scale = quantize_rows(delta)
        tensors[name + "::q"], tensors[name + "::scale"] = q, scale
        kinds[name] = f"delta:{ref}"
        del delta
    small = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and p.name not in TOKENIZER_FILES and p.name != "model.safetensors" and \
                p.stat().st_size <= SMALL_FILE_BYTES:
            small[rel] = p.read_text(encoding="utf-8")
    return tensors, {"name": record["name"], "tensors": kinds, "files": small}


def fidelity(folder: Path, tensors: dict, manifest: dict, base_state: dict, texts: list[str]) -> dict:
    """How far base + shipped deltas is from the trained model (the int8 rounding): the lowest embedding cosine
    for a bi-encoder, the largest score difference for a cross-encoder."""
    import tempfile

    import numpy as np
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = Path(tmp) / "m"
        shutil.copytree(folder, rebuilt)
        save_file(apply(tensors, manifest, base_state), str(rebuilt / "model.safetensors"))
        cross, a = _outputs(folder, texts)
        _, b = _outputs(rebuilt, texts)
    if cross:
        return {"max_abs_score_diff": round(float(np.max(np.abs(a - b))), 6)}
    cos = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return {"min_cosine": round(float(np.min(cos)), 6)}


def _outputs(folder: Path, texts: list[str]):
    import numpy as np
    from sentence_transformers import CrossEncoder, SentenceTransformer

    if "ForSequenceClassification" in (folder / "config.json").read_text(encoding="utf-8"):
        pairs = [(t, texts[(i + 1) % len(texts)]) for i, t in enumerate(texts)]
        return True, np.asarray(CrossEncoder(str(folder), local_files_only=True).predict(pairs, show_progress_bar=False))
    return False, SentenceTransformer(str(folder), local_files_only=True).encode(texts, show_progress_bar=False)


def apply(tensors: dict, manifest: dict, base_state: dict) -> dict:
    """The trained state dict from a base's state (any vocabulary size: the word embeddings come from there)."""
    out = {}
    for name, kind in manifest["tensors"].items():
        if kind == "full":
            out[name] = tensors[name].float().contiguous()
            continue
        how, ref = kind.split(":", 1)
        value = base_state[ref].float().clone()
        if how == "delta":
            value += dequantize_rows(tensors[name + "::q"], tensors[name + "::scale"])
        out[name] = value.contiguous()
    return out


def write_archive(tensors: dict, manifest: dict, stem: Path) -> list[str]:
    """One model as an xz tar (manifest + tensors) in parts of PART_BYTES; returns the part file names."""
    from safetensors.torch import save

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz", preset=3) as tar:
        for member, data in (("manifest.json", json.dumps(manifest, ensure_ascii=False).encode("utf-8")),
                             ("tensors.safetensors", save({k: v.contiguous() for k, v in tensors.items()}))):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    names = []
    for i in range(0, len(data), PART_BYTES):
        names.append(f"{stem.name}.part{i // PART_BYTES:02d}")
        (stem.parent / names[-1]).write_bytes(data[i:i + PART_BYTES])
    return names


def bundles(built: dict, staging: Path, files: int = BUNDLE_FILES) -> list[list[str]]:
    """Models grouped, in order, into what one call can bring back (BUNDLE_BYTES; `files` with report.json)."""
    out, size = [[]], 0
    for info in built.values():
        need = sum((staging / f).stat().st_size for f in info["parts"])
        if out[-1] and (size + need > BUNDLE_BYTES or len(out[-1]) + len(info["parts"]) > files - 1):
            out.append([])
            size = 0
        out[-1] += info["parts"]
        size += need
    return out if out[-1] else out[:-1]


def fp32_state(weights: Path) -> dict:
    """The weights as fp32 tensors, written back as fp32 when they were not (the recipes load the file itself)."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(weights))
    fp32 = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    if any(v.dtype != fp32[k].dtype for k, v in state.items()):
        save_file(fp32, str(weights))
    return fp32


def load_file_bytes(data: bytes) -> dict:
    from safetensors.torch import load

    return load(data)
