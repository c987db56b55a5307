"""Training elsewhere (bench.train.transfer) and the layer-pruned student recipe, on the tiny Unigram model.

The remote machine is simulated by a second cache: `prepare` cuts the base, `train_and_pack` builds and packs
there, `unpack` rebuilds here over the full-vocabulary base; the rebuilt models must match the remote ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.models import encoders, registry
from bench.train import transfer
from tests.conftest import eval_tasks
from tests.test_train import PARAGRAPHS, falls, leaflet, squad
from tests.test_trim import unigram_model_dir  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow  # real-model conversion, exports or training: `pytest -m 'not slow'` skips them

FAST = "max_seq_length: 48, batch_size: 4, lr: 0.002, max_steps: 12, epochs: 50, freeze_embeddings: true"
NAMES = ["uni contrastive", "uni cross-encoder", "uni student"]


@pytest.fixture
def env(tmp_path, unigram_model_dir, monkeypatch):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    squad(data / "qa.json")
    leaflet(data / "leaflets.json")
    eval_tasks(tmp_path, monkeypatch, docs={"x1": ("", PARAGRAPHS[7])}, queries={"e1": ("Başkent neresi?", "x1")})
    models = tmp_path / "models.yaml"
    models.write_text(f"""models:
  - {{name: bm25, kind: lexical, loader: bm25, source: bm25s}}
  - {{name: uni, kind: bi-encoder, loader: sentence-transformers, source: {unigram_model_dir},
      query_prefix: "soru: ", passage_prefix: "metin: "}}
  - name: uni contrastive
    kind: bi-encoder
    loader: sentence-transformers
    variants: [torch-fp32]
    train: {{recipe: contrastive, base: uni, data: [data/qa.json], seed: 2, params: {{{FAST}}}}}
  - name: uni cross-encoder
    kind: cross-encoder
    loader: sentence-transformers
    train: {{recipe: cross-encoder, base: uni, data: [data/qa.json], params: {{{FAST}}}}}
  - name: uni student
    kind: bi-encoder
    loader: sentence-transformers
    variants: [torch-fp32]
    train: {{recipe: prune, base: uni contrastive, data: [data/*.json],
             params: {{{FAST}, layers: [1], distill_epochs: 20, distill_lr: 0.005}}}}
  - name: uni merged
    kind: bi-encoder
    loader: sentence-transformers
    variants: [torch-fp32]
    train: {{recipe: merge, base: uni contrastive, data: [data/qa.json], params: {{with: uni, weight: 0.25}}}}
  - name: uni unfrozen
    kind: bi-encoder
    loader: sentence-transformers
    train: {{recipe: contrastive, base: uni, data: [data/qa.json], params: {{max_steps: 2}}}}
""", encoding="utf-8")
    return models


def by_name(models: Path) -> dict:
    return {e.name: e for e in registry.load_registry(models)}


def test_prune_student_keeps_chosen_layers_loss_falls_and_encodes(env, capsys):
    assert main(["train", "uni student", "--models", str(env)]) == 0
    e = by_name(env)["uni student"]
    folder = registry.trained_dir(e)
    rec = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    assert rec["layers_kept"] == [1] and json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 1
    assert falls(rec["distill_losses"]) and falls(rec["losses"]) and rec["distill_texts"] > 10
    assert "distillation reads the leaflet text" in rec["leakage_note"]
    vecs = encoders.load(e, "torch-fp32").encode(["Van Gölü tuzlu mudur?"], "query", progress=False)
    assert vecs.shape == (1, 32) and np.isfinite(vecs).all()


def test_prune_rejects_layers_the_teacher_lacks(env, capsys):
    env.write_text(env.read_text(encoding="utf-8").replace("layers: [1]", "layers: [5]"), encoding="utf-8")
    assert main(["train", "uni student", "--models", str(env)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the teacher's own build
    assert err.startswith("error: train.params.layers: [5] must list distinct layer indices")
    assert not registry.trained_dir(by_name(env)["uni student"]).exists()


def test_prepare_train_pack_unpack_round_trip(env, tmp_path, monkeypatch, unigram_model_dir):  # noqa: F811
    remote = tmp_path / "remote"
    plan = transfer.prepare(env, NAMES, remote)
    assert plan["names"] == ["uni contrastive", "uni cross-encoder", "uni student"]
    assert plan["cut"]["vocabulary_texts_changed"] == 0 and plan["cut"]["pieces_kept"] < plan["cut"]["pieces_original"]
    assert not (remote / "base" / "model.safetensors").exists() and (remote / "base" / "model.safetensors.xz").is_file()
    # "There": its own cache, the folder alone (the data and tasks travel inside it).
    here_cache = Path(monkeypatch_env := str(tmp_path / "here-cache"))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "there-cache"))
    shutil.move(str(remote), str(tmp_path / "moved"))
    monkeypatch.setenv("BENCH_TRANSFER_HOLD", str(tmp_path / "held"))
    # bundle_files 3: report.json + 2 one-part models per call
    report = transfer.train_and_pack(tmp_path / "moved", tmp_path / "out", bundle_files=3)
    assert sorted(report["built"]) == sorted(NAMES) and not report["failed"]
    assert [len(b) for b in report["bundles"]] == [2, 1] and (tmp_path / "held" / "bundle-2" / "report.json").is_file()
    assert report["built"]["uni contrastive"]["fidelity"]["min_cosine"] > 0.999
    assert report["built"]["uni cross-encoder"]["fidelity"]["max_abs_score_diff"] < 0.01
    there = {n: registry.trained_dir(by_name(env)[n]) for n in NAMES}
    texts = ["Aşılar ne sağlar?", "Ankara Türkiye'nin başkentidir.", "Kapadokya balonları ünlüdür."]
    remote_vecs = {n: encoders.load(by_name(env)[n], "torch-fp32").encode(texts, "query", progress=False)
                   for n in ("uni contrastive", "uni student")}
    assert all(p.exists() for p in there.values())
    pairs = ("Aşılar ne sağlar?", [PARAGRAPHS[0], PARAGRAPHS[7], PARAGRAPHS[3]])
    remote_ce = encoders.load_cross_encoder(by_name(env)["uni cross-encoder"]).pair_scores(*pairs)

    monkeypatch.setenv("BENCH_CACHE", monkeypatch_env)
    assert transfer.main(["unpack", str(tmp_path / "out"), "--models", str(env)]) == 0
    assert not registry.trained_dir(by_name(env)["uni student"]).exists()  # its bundle has not come yet
    assert transfer.main(["unpack", str(tmp_path / "held" / "bundle-2"), "--models", str(env)]) == 0
    entries = by_name(env)
    for n in ("uni contrastive", "uni student"):
        here = registry.trained_dir(entries[n])
        assert here.parent.parent == here_cache and registry.trained_mismatch(entries[n]) is None
        vecs = encoders.load(entries[n], "torch-fp32").encode(texts, "query", progress=False)
        cos = np.sum(vecs * remote_vecs[n], axis=1) / np.linalg.norm(vecs, axis=1) / np.linalg.norm(remote_vecs[n], axis=1)
        assert cos.min() > 0.99, (n, cos)
        rec = json.loads((here / "training.json").read_text(encoding="utf-8"))
        assert rec["transfer"]["pieces_kept"] == plan["cut"]["pieces_kept"] and rec["data"]
        # The full vocabulary is back: the base's tokenizer and embedding rows.
        assert (here / "tokenizer.json").read_bytes() == (Path(unigram_model_dir) / "tokenizer.json").read_bytes()
    scores = encoders.load_cross_encoder(entries["uni cross-encoder"]).pair_scores(*pairs)
    assert scores.shape == (3,) and np.allclose(scores, remote_ce, atol=0.02) and np.ptp(remote_ce) > 0


def test_transfer_refuses_unfrozen_embeddings_and_other_data(env, tmp_path, capsys):
    assert transfer.main(["prepare", "uni unfrozen", "--models", str(env), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "freeze_embeddings: true" in err and "'uni unfrozen'" in err and "\n" not in err
    assert transfer.main(["unpack", str(tmp_path / "nothing"), "--models", str(env)]) == 2
    assert "no report.json" in capsys.readouterr().err


def test_merge_averages_the_weights_and_loads(env, unigram_model_dir, capsys):  # noqa: F811
    from safetensors.torch import load_file

    assert main(["train", "uni merged", "--models", str(env)]) == 0
    entries = by_name(env)
    merged = load_file(str(registry.trained_dir(entries["uni merged"]) / "model.safetensors"))
    tuned = load_file(str(registry.trained_dir(entries["uni contrastive"]) / "model.safetensors"))
    base = load_file(str(Path(unigram_model_dir) / "model.safetensors"))
    key = "encoder.layer.0.attention.self.query.weight"
    assert not np.allclose(tuned[key], base[key])
    assert np.allclose(merged[key], 0.25 * tuned[key] + 0.75 * base[key], atol=1e-6)
    rec = json.loads((registry.trained_dir(entries["uni merged"]) / "training.json").read_text(encoding="utf-8"))
    assert rec["merged_with"] == "uni" and rec["weight"] == 0.25
    vecs = encoders.load(entries["uni merged"], "torch-fp32").encode(["Aşılar ne sağlar?"], "query", progress=False)
    assert np.isfinite(vecs).all()
    env.write_text(env.read_text(encoding="utf-8").replace("with: uni,", "with: nobody,"), encoding="utf-8")
    assert main(["train", "uni merged", "--models", str(env), "--force"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: 'uni merged': field 'train.params.with'")


def test_prune_distillation_only(env):
    env.write_text(env.read_text(encoding="utf-8").replace("epochs: 50, freeze_embeddings: true, layers: [1]",
                                                           "epochs: 0, freeze_embeddings: true, layers: [1]"),
                   encoding="utf-8")
    assert main(["train", "uni student", "--models", str(env)]) == 0
    rec = json.loads((registry.trained_dir(by_name(env)["uni student"]) / "training.json").read_text(encoding="utf-8"))
    assert rec["loss"] == "MSELoss" and rec["losses"] == rec["distill_losses"] and falls(rec["losses"])
