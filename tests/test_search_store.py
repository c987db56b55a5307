"""bench search on LanceDB: the ANN index a large index gets, incremental changes to it, a killed writer's rows
never served, and hits as data (file, position, score, text; medicine and section for leaflets)."""

import json

import numpy as np
import pytest

from bench import cli, search, store
from bench.models import encoders, registry
from test_leaflets import LEAFLET

WORDS = ("göl deniz dağ nehir orman şehir köy tarla bahçe okul hastane ilaç doktor futbol basketbol müzik kitap "
         "tarih bilim sanat yemek su ekmek çay kahve").split()


def write_folder(folder, n, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    for i in range(n):
        text = " ".join(rng.choice(WORDS, 12)) + f" belge{i}."
        (folder / f"d{i:04d}.txt").write_text(text, encoding="utf-8")


def tiny(tiny_registry):
    entry = {e.name: e for e in registry.load_registry(tiny_registry)}["tiny"]
    return encoders.load(entry, "torch-fp32")


@pytest.fixture
def small_ann(monkeypatch):
    monkeypatch.setattr(store, "ANN_FROM", 300)


def exact_top(index, candidate, question, k):
    manifest, chunks, vectors = search.load(index)
    order = np.argsort(-(vectors @ candidate.query_vector(question)), kind="stable")[:k]
    return [chunks[i].id for i in order]


@pytest.mark.slow  # a 320-passage index and its ANN index
def test_a_large_bi_encoder_index_gets_an_ann_index_that_finds_the_exact_hits(tmp_path, tiny_registry, small_ann):
    folder, idx = tmp_path / "docs", tmp_path / "idx"
    write_folder(folder, 320)
    candidate = tiny(tiny_registry)
    stats = search.build(folder, candidate, "tiny", "torch-fp32", idx)
    assert stats["ann"]["type"] == store.ANN["type"] and stats["passages"] == 320
    opened = store.open_store(idx)
    assert opened.has_ann() and opened.loaded is None  # nothing read into memory for an ANN query
    opened.warm()
    found = overlap = 0
    for q in ("göl kenarında orman", "hastane doktor ilaç", "futbol ve müzik", "çay kahve ekmek", "belge17"):
        hits, ms = search.ask(opened, candidate, q, 10)
        assert ms > 0 and len(hits) == 10 and all(isinstance(s, float) for s, _ in hits)
        overlap += len({c.id for _, c in hits} & set(exact_top(idx, candidate, q, 10)))
        found += 10
    assert overlap / found >= 0.8  # recall@10 of the ANN index against exact search on the same vectors


@pytest.mark.slow
def test_ann_index_takes_new_and_deleted_files_incrementally(tmp_path, tiny_registry, small_ann, capsys):
    folder, idx = tmp_path / "docs", tmp_path / "idx"
    write_folder(folder, 320)
    candidate = tiny(tiny_registry)
    search.build(folder, candidate, "tiny", "torch-fp32", idx)
    (folder / "d0000.txt").unlink()
    (folder / "yeni.txt").write_text("Van Gölü Türkiye'nin en büyük gölüdür.", encoding="utf-8")
    stats = search.build(folder, candidate, "tiny", "torch-fp32", idx)
    assert (stats["indexed"], stats["reused"], stats["passages"]) == (1, 319, 320) and stats["ann"]
    opened = store.open_store(idx)
    files = {c.source for _, c in search.ask(opened, candidate, "Van Gölü Türkiye'nin en büyük gölüdür.", 320)[0]}
    assert "yeni.txt" in files and "d0000.txt" not in files


def test_rows_of_a_writer_killed_before_its_manifest_are_never_served(tmp_path, tiny_registry, monkeypatch):
    folder, idx = tmp_path / "docs", tmp_path / "idx"
    write_folder(folder, 5)
    candidate = tiny(tiny_registry)
    search.build(folder, candidate, "tiny", "torch-fp32", idx)
    before = [c.id for c in search.load(idx)[1]]
    (folder / "yeni.txt").write_text("Yeni bir belge.", encoding="utf-8")

    def killed(self, manifest):
        raise KeyboardInterrupt  # after the rows were committed to the table, before the manifest names them

    monkeypatch.setattr(store.Writer, "commit", killed)
    with pytest.raises(KeyboardInterrupt):
        search.build(folder, candidate, "tiny", "torch-fp32", idx)
    monkeypatch.undo()
    assert store.open_store(idx).table.count_rows() == 5  # read at the manifest's version
    assert [c.id for c in search.load(idx)[1]] == before
    stats = search.build(folder, candidate, "tiny", "torch-fp32", idx)
    assert (stats["indexed"], stats["reused"], stats["passages"]) == (1, 5, 6)


def test_hits_as_data_carry_file_position_score_text_and_the_leaflets_medicine(tmp_path, tiny_registry):
    folder, idx = tmp_path / "docs", tmp_path / "idx"
    folder.mkdir()
    (folder / "ilac.json").write_text(json.dumps(LEAFLET, ensure_ascii=False), encoding="utf-8")
    (folder / "not.txt").write_text("Van Gölü sodalıdır.", encoding="utf-8")
    assert cli.main(["search", "index", str(folder), "--models", str(tiny_registry), "--model", "bm25",
                     "--index", str(idx)]) == 0
    hits, _ = search.ask(store.open_store(idx), _bm25(tiny_registry), "PAROL", 10)
    records = [search.hit_record(s, c) for s, c in hits]
    leaflet = [r for r in records if r["file"] == "ilac.json"]
    plain = [r for r in records if r["file"] == "not.txt"]
    assert leaflet and plain
    assert {"file", "position", "score", "text", "medicine", "section"} <= set(leaflet[0])
    assert set(plain[0]) == {"file", "position", "score", "text"}
    json.dumps(records, ensure_ascii=False)  # plain data


def _bm25(tiny_registry):
    entry = {e.name: e for e in registry.load_registry(tiny_registry)}["bm25"]
    return encoders.load(entry)
