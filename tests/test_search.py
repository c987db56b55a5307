import json
import re

import pytest

from bench import cli
from test_leaflets import LEAFLET

# A one-page PDF holding a line of text, written by hand so the test needs no PDF writer.
def minimal_pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notlar.txt").write_text("Van Gölü Türkiye'nin en büyük gölüdür. Suyu sodalıdır.", encoding="utf-8")
    (folder / "spor.md").write_text("# Futbol\n\nBir futbol maçı doksan dakika sürer.", encoding="utf-8")
    (folder / "rapor.pdf").write_bytes(minimal_pdf("Basketbolda uclu atis uc sayidir."))
    (folder / "ilac.json").write_text(json.dumps(LEAFLET, ensure_ascii=False), encoding="utf-8")
    return folder


def search(*args):
    return cli.main(["search", *[str(a) for a in args]])


def test_index_then_query_shows_source_and_position(docs, tiny_registry, tmp_path, capsys):
    index = tmp_path / "idx"
    assert search("index", docs, "--models", tiny_registry, "--model", "tiny", "--index", index) == 0
    out = capsys.readouterr().out
    assert "indexed 4 files" in out
    assert search("query", "Parol aç karnına alınır mı?", "--index", index, "--models", tiny_registry, "-k", "20") == 0
    out = capsys.readouterr().out
    assert "ilac.json · Parol (ilacAdi parol), section nasilKullanilir" in out
    assert "rapor.pdf · page 1" in out and "notlar.txt" in out


def test_only_changed_files_are_reindexed(docs, tiny_registry, tmp_path, capsys):
    index = tmp_path / "idx"
    search("index", docs, "--models", tiny_registry, "--model", "tiny", "--index", index)
    (docs / "notlar.txt").write_text("Erciyes Dağı Kayseri'dedir.", encoding="utf-8")
    capsys.readouterr()
    search("index", docs, "--models", tiny_registry, "--model", "tiny", "--index", index)
    assert "indexed 1 files, reused 3" in capsys.readouterr().out


def test_bad_input_is_a_clear_error(docs, tiny_registry, tmp_path, capsys):
    index = tmp_path / "idx"
    search("index", docs, "--models", tiny_registry, "--model", "tiny", "--index", index)
    assert search("index", docs, "--models", tiny_registry, "--model", "bm25", "--index", index) == 2
    assert "index was built with tiny [torch-fp32], not bm25 [bm25s]" in capsys.readouterr().err
    assert search("index", docs, "--models", tiny_registry, "--model", "tiny", "--variant", "onnx-int8", "--index", index) == 2
    assert "index was built with tiny [torch-fp32]" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert search("index", empty, "--models", tiny_registry, "--model", "tiny", "--index", tmp_path / "i2") == 2
    assert "no .txt, .md, .pdf" in capsys.readouterr().err
    (docs / "bozuk.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    # One unreadable file is skipped and named, not fatal (tests/test_search_index.py has more).
    assert search("index", docs, "--models", tiny_registry, "--model", "tiny", "--index", tmp_path / "i3") == 0
    assert "skipped bozuk.pdf:" in capsys.readouterr().out
    assert search("query", "x", "--index", tmp_path / "nothing", "--models", tiny_registry) == 2
    assert "no search index here" in capsys.readouterr().err


def test_rerank_reorders_the_top_passages(docs, tiny_registry, tmp_path, capsys):
    index = tmp_path / "idx"
    search("index", docs, "--models", tiny_registry, "--model", "tiny", "--index", index)
    capsys.readouterr()
    assert search("query", "Van Gölü", "--index", index, "--models", tiny_registry, "--rerank", "bm25", "-k", "2") == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"tiny \[torch-fp32\] -> bm25 · \d+\.\d ms: Van Gölü", out[0])
    assert "notlar.txt" in out[1]  # BM25 puts the lake passage first
