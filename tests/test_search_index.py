"""`bench search index`: an index is written whole or not at all, checked when read, and one bad file is skipped."""

import fcntl
import json
import os
import shutil

import pytest

from bench import cli, search
from bench.errors import BenchError
from test_leaflets import LEAFLET
from test_search import minimal_pdf


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notlar.txt").write_text("Van Gölü Türkiye'nin en büyük gölüdür. Suyu sodalıdır.", encoding="utf-8")
    (folder / "spor.md").write_text("# Futbol\n\nBir futbol maçı doksan dakika sürer.", encoding="utf-8")
    return folder


def index(folder, idx, registry):
    return cli.main(["search", "index", str(folder), "--models", str(registry), "--model", "tiny", "--index", str(idx)])


def query(text, idx, registry):
    return cli.main(["search", "query", text, "--models", str(registry), "--index", str(idx)])


def consistent(idx) -> bool:
    manifest, chunks, vectors = search.load(idx)
    ids = [i for f in manifest["files"].values() for i in f["chunks"]]
    return len(chunks) == vectors.shape[0] and ids == [c.id for c in chunks]


def test_interrupted_write_leaves_the_old_index_whole(docs, tiny_registry, tmp_path, monkeypatch, capsys):
    idx = tmp_path / "idx"
    assert index(docs, idx, tiny_registry) == 0
    before = search.load(idx)[1]
    (docs / "notlar.txt").write_text(" ".join(f"Cümle {i} burada biter." for i in range(200)), encoding="utf-8")
    real_dumps = json.dumps

    def interrupted(obj, *a, **kw):
        if isinstance(obj, dict) and "files" in obj:  # the manifest: written after the vectors and the passages
            raise KeyboardInterrupt
        return real_dumps(obj, *a, **kw)

    monkeypatch.setattr(json, "dumps", interrupted)
    assert index(docs, idx, tiny_registry) == 130  # Ctrl-C: "interrupted", exit 130
    monkeypatch.setattr(json, "dumps", real_dumps)
    assert consistent(idx) and search.load(idx)[1] == before
    assert sorted(p.name for p in tmp_path.iterdir() if "idx" in p.name) in (["idx"], [".idx.lock", "idx"])
    capsys.readouterr()
    assert index(docs, idx, tiny_registry) == 0
    assert "indexed 1 files, reused 1" in capsys.readouterr().out and consistent(idx)


def edit_manifest(idx, change):
    manifest = json.loads((idx / "manifest.json").read_text(encoding="utf-8"))
    change(manifest)
    (idx / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def truncate_a_data_file(idx):
    data = sorted((idx / "passages.lance" / "data").iterdir())[0]
    data.write_bytes(data.read_bytes()[:100])


@pytest.mark.parametrize("damage", [
    lambda idx: (idx / "manifest.json").write_text('{"model": "tiny", "vari', encoding="utf-8"),
    lambda idx: (idx / "manifest.json").unlink(),
    lambda idx: edit_manifest(idx, lambda m: m.update(dense=[{"stage": "tiny [torch-fp32]", "dim": 7}])),
    lambda idx: edit_manifest(idx, lambda m: m.update(version=m["version"] + 5)),
    lambda idx: edit_manifest(idx, lambda m: next(iter(m["files"].values()))["chunks"].pop()),
    lambda idx: shutil.rmtree(idx / "passages.lance"),
    truncate_a_data_file,
    lambda idx: (idx / "embeddings.npy").write_bytes(b"\x93NUMPY an index of the older format"),
], ids=["truncated manifest", "no manifest", "wrong width", "unknown version", "a passage missing from the manifest",
        "no table", "truncated data file", "older format"])
def test_damaged_index_is_refused_by_query_and_rebuilt_by_index(docs, tiny_registry, tmp_path, capsys, damage):
    idx = tmp_path / "idx"
    (docs / "ilac.json").write_text(json.dumps(LEAFLET, ensure_ascii=False), encoding="utf-8")
    assert index(docs, idx, tiny_registry) == 0
    damage(idx)
    capsys.readouterr()
    assert query("göl", idx, tiny_registry) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "re-index" in err[0]
    assert index(docs, idx, tiny_registry) == 0
    out = capsys.readouterr().out
    assert "rebuilding" in out and "indexed 3 files, reused 0" in out and consistent(idx)
    assert query("göl", idx, tiny_registry) == 0


def test_unreadable_files_are_skipped_and_named(docs, tiny_registry, tmp_path, capsys):
    (docs / "bozuk.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (docs / "latin5.txt").write_bytes("ılık su".encode("iso-8859-9"))
    (docs / "rapor.pdf").write_bytes(minimal_pdf("Basketbolda uclu atis uc sayidir."))
    bad_leaflet = {"prospektus": [{"ilacAdi": "x", "nedir": ["not", "text"]}]}
    (docs / "ilac.json").write_text(json.dumps(bad_leaflet), encoding="utf-8")
    assert index(docs, tmp_path / "idx", tiny_registry) == 0
    out = capsys.readouterr().out
    assert "indexed 3 files, reused 0, skipped 3" in out
    for name, why in (("bozuk.pdf", "unreadable PDF"), ("latin5.txt", "not UTF-8"), ("ilac.json", "nedir")):
        line, = [x for x in out.splitlines() if x.startswith(f"skipped {name}")]
        assert why in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_file_without_read_permission_is_skipped(docs, tiny_registry, tmp_path, capsys):
    secret = docs / "gizli.txt"
    secret.write_text("gizli", encoding="utf-8")
    secret.chmod(0)
    assert index(docs, tmp_path / "idx", tiny_registry) == 0
    assert "skipped gizli.txt" in capsys.readouterr().out


def test_index_naming_a_file_is_refused_before_encoding(docs, tiny_registry, tmp_path, monkeypatch, capsys):
    from bench.models import encoders

    def no_encoding(*a, **kw):
        raise AssertionError("encoded before checking --index")

    monkeypatch.setattr(encoders.Dense, "encode", no_encoding)
    target = tmp_path / "file.idx"
    target.write_text("not a folder", encoding="utf-8")
    assert index(docs, target, tiny_registry) == 2
    err = capsys.readouterr().err
    assert "--index" in err and "not a folder" in err and target.read_text(encoding="utf-8") == "not a folder"


def test_index_is_written_under_a_lock_beside_it(docs, tiny_registry, tmp_path, monkeypatch):
    from bench.models import encoders

    idx = tmp_path / "idx"
    seen = []
    real = encoders.Dense.encode

    def probe(self, texts, role, progress=True):
        with open(search.lock_path(idx), "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("free")
            except BlockingIOError:
                seen.append("held")
        return real(self, texts, role, progress)

    monkeypatch.setattr(encoders.Dense, "encode", probe)
    assert index(docs, idx, tiny_registry) == 0
    assert seen and set(seen) == {"held"}


def test_reused_passages_stay_with_their_own_file(tmp_path, tiny_registry, capsys):
    """Two leaflet files may hold the same medicine; reuse must not hand one file's passages to the other."""
    folder = tmp_path / "docs"
    folder.mkdir()
    other = json.loads(json.dumps(LEAFLET))
    other["prospektus"][0]["nedir"] = "PAROL başka bir metindir."
    (folder / "a.json").write_text(json.dumps(LEAFLET, ensure_ascii=False), encoding="utf-8")
    (folder / "b.json").write_text(json.dumps(other, ensure_ascii=False), encoding="utf-8")
    idx = tmp_path / "idx"
    assert index(folder, idx, tiny_registry) == 0
    first = [(c.source, c.text) for c in search.load(idx)[1]]
    assert index(folder, idx, tiny_registry) == 0
    assert "reused 2" in capsys.readouterr().out
    assert [(c.source, c.text) for c in search.load(idx)[1]] == first and consistent(idx)


def test_load_of_a_missing_index_says_how_to_build_one(tmp_path):
    with pytest.raises(BenchError, match="no search index here"):
        search.load(tmp_path / "none")
