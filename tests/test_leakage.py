"""The leakage check and the thquad paragraph split (and the squad task's `paragraphs:` field that reads it)."""

from __future__ import annotations

import json

import pytest

from bench.data import tasks
from bench.errors import BenchError
from bench.data import split
from bench.train import leakage
from tests.conftest import write_beir


def test_fold_is_turkish_aware_and_ignores_spacing():
    assert leakage.fold("  İSTANBUL'un   nüfusu\n") == leakage.fold("istanbul'un nüfusu")
    assert leakage.fold("IRMAK") == "ırmak" != leakage.fold("irmak")
    assert leakage.fold("cafe\u0301") == leakage.fold("caf\u00e9")  # NFC


def test_counts_planted_paragraph_and_fails_on_a_question(tmp_path):
    write_beir(tmp_path / "t", docs={"d1": ("", "Van Gölü sodalıdır."), "d2": ("", "Başka bir metin.")},
               queries={"q1": ("Van Gölü nasıldır?", "d1")})
    (tmp_path / "t.yaml").write_text("name: tr_mini_wiki\nformat: beir\npath: t\n", encoding="utf-8")
    spec = tasks.load_spec(tmp_path / "t.yaml")
    counts = leakage.check(["Başka bir soru?"], ["VAN   GÖLÜ sodalıdır.", "yok"], [spec])
    assert counts == {"tr_mini_wiki": {"questions": 0, "paragraphs": 1}}
    with pytest.raises(BenchError, match="1 training question"):
        leakage.check(["van gölü  NASILDIR?"], [], [spec])


def test_missing_eval_task_is_reported_not_fatal(tmp_path):
    (tmp_path / "x.yaml").write_text("name: xquad_tr\nformat: squad\npath: nowhere.json\n", encoding="utf-8")
    counts = leakage.check(["soru"], ["metin"], [tasks.load_spec(tmp_path / "x.yaml")])
    assert "unavailable" in counts["xquad_tr"]


def _squad(path, n=40):
    path.parent.mkdir(parents=True, exist_ok=True)
    paras = [{"context": f"Paragraf {i}: Osmanlı döneminde {i}. olay yaşandı.",
              "qas": [{"id": f"q{i}", "question": f"{i}. olay ne zaman yaşandı?", "answers": []}]} for i in range(n)]
    path.write_text(json.dumps({"data": [{"title": "Tarih", "paragraphs": paras}]}, ensure_ascii=False), encoding="utf-8")


def test_split_by_paragraph_is_disjoint_stable_and_about_a_tenth(tmp_path):
    _squad(tmp_path / "a.json", 200)
    train, dev = split.convert_split(tmp_path, "train"), split.convert_split(tmp_path, "dev")
    train_texts = {d["text"] for d in train.corpus.values()}
    dev_texts = {d["text"] for d in dev.corpus.values()}
    assert not train_texts & dev_texts and len(train_texts) + len(dev_texts) == 200
    assert 8 <= len(dev_texts) <= 35
    assert len(dev.queries) == len(dev_texts)  # every question follows its paragraph
    assert split.part_of("  Paragraf 3: Osmanlı döneminde 3. olay yaşandı.") == split.part_of(
        "Paragraf 3: Osmanlı döneminde 3. olay yaşandı.")


def test_squad_task_paragraphs_field(tmp_path):
    _squad(tmp_path / "data" / "a.json", 60)
    (tmp_path / "dev.yaml").write_text("name: d\nformat: squad\npath: data\nparagraphs: dev\n", encoding="utf-8")
    data = tasks.load(tasks.load_spec(tmp_path / "dev.yaml"))
    assert data.corpus and all(split.part_of(d["text"]) == "dev" for d in data.corpus.values())
    (tmp_path / "bad.yaml").write_text("name: d\nformat: beir\npath: data\nparagraphs: dev\n", encoding="utf-8")
    with pytest.raises(BenchError, match="field 'paragraphs' must be 'train', 'dev' or 'era'"):
        tasks.load_spec(tmp_path / "bad.yaml")
