import json

import pytest

from bench import cli
from bench.data import convert
from bench.errors import BenchError

CTX_A = "Van Gölü Türkiye'nin en büyük gölüdür. Suyu sodalıdır."
CTX_B = "Tuz Gölü Konya ile Aksaray arasındadır. Türkiye tuzunun çoğu buradan çıkar."
CTX_C = "Erciyes Dağı Kayseri'de sönmüş bir yanardağdır."


def squad(tmp_path):
    data = {"data": [{"title": "Göller", "paragraphs": [
        {"context": CTX_A, "qas": [
            {"id": "a1", "question": "En büyük göl hangisi?", "answers": [{"text": "Van Gölü", "answer_start": 0}]},
            {"id": "a2", "question": "En büyük göl hangisi?", "answers": [{"text": "Van Gölü", "answer_start": 0}]},
            {"id": "a3", "question": "Van Gölü'nün suyu nasıldır?", "answers": [{"text": "tatlı", "answer_start": 0}]},
            {"id": "a4", "question": "Hangi göl tuz verir?", "answers": [{"text": "Van", "answer_start": 0}]},
        ]},
        {"context": "\ufeff" + CTX_A.replace(" ", "  "), "qas": []},
        {"context": CTX_B, "qas": [
            {"id": "b1", "question": "Hangi göl tuz verir?", "answers": [{"text": "Tuz Gölü", "answer_start": 0}]},
            {"id": "b2", "question": "Tuz Gölü nerededir?", "answers": [{"text": "Konya ile Aksaray", "answer_start": 9}]},
            {"id": "b3", "question": "   ", "answers": []},
        ]},
        {"context": CTX_C, "qas": []},
    ]}]}
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_squad_conversion_validates_and_reports(tmp_path):
    conv = convert.convert_file(squad(tmp_path), "squad")
    assert len(conv.corpus) == 3  # the BOM / whitespace copy of A is merged; C stays as a distractor
    assert set(conv.queries) == {"a1", "b2"}
    reasons = sorted(r["reason"] for r in conv.rejects)
    assert reasons == ["answer_not_in_context", "duplicate_context", "duplicate_question", "empty_question",
                       "question_in_two_contexts", "question_in_two_contexts"]
    doc_a = conv.qrels["a1"]
    assert conv.corpus[next(iter(doc_a))]["text"] == CTX_A


def test_jsonl_and_csv_pairs(tmp_path):
    jl = tmp_path / "p.jsonl"
    jl.write_text("\n".join(json.dumps({"question": q, "context": c}, ensure_ascii=False) for q, c in
                            [("Van nerede?", CTX_A), ("Erciyes nerede?", CTX_C)]) + "\n", encoding="utf-8")
    cv = tmp_path / "p.csv"
    cv.write_text(f'question,context\nVan nerede?,"{CTX_A}"\nErciyes nerede?,"{CTX_C}"\n', encoding="utf-8")
    for path, fmt in ((jl, "jsonl"), (cv, "csv")):
        conv = convert.convert_file(path, fmt)
        assert len(conv.corpus) == 2 and len(conv.queries) == 2 and not conv.rejects


def test_bad_pairs_name_the_line(tmp_path):
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"question": "a", "context": "b"}\n{"question": "a"}\n', encoding="utf-8")
    with pytest.raises(BenchError, match=r"p.jsonl:2: field 'context'"):
        convert.convert_file(jl, "jsonl")
    cv = tmp_path / "p.csv"
    cv.write_text("soru,metin\na,b\n", encoding="utf-8")
    with pytest.raises(BenchError, match="p.csv:1: CSV header"):
        convert.convert_file(cv, "csv")


def test_cli_convert_writes_beir_layout_readable_by_tasks(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["convert", str(squad(tmp_path)), "--out", str(out), "--no-repair"]) == 0
    assert "rejects:" in capsys.readouterr().out
    from bench.data import tasks

    data = tasks.read_beir(out)
    assert len(data.corpus) == 3 and len(data.queries) == 2
    assert len((out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()) == 6
    # Repair (the default) keeps the question asked of two paragraphs, with both relevant.
    assert cli.main(["convert", str(squad(tmp_path)), "--out", str(tmp_path / "fixed")]) == 0
    data = tasks.read_beir(tmp_path / "fixed")
    assert len(data.qrels["a4"]) == 2
    # a3's answer ('tatlı') is nowhere in its paragraph, but the question is asked of it and BM25 ranks it first
    # among all contexts: kept as a retrieval question, and recorded as a repair of tier 'context'.
    assert set(data.queries) == {"a1", "a3", "a4", "b2"}
    repairs = [json.loads(line) for line in (tmp_path / "fixed" / "repairs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["id"]: r["tier"] for r in repairs}["a3"] == "context"


def test_xquad_counts_if_present():
    path = convert.Path(__file__).resolve().parents[2] / "shared/data/xquad_tr/xquad.tr.json"
    if not path.exists():
        pytest.skip(f"{path} not here (download from github.com/google-deepmind/xquad)")
    conv = convert.convert_file(path, "squad")
    assert len(conv.corpus) == 240
    # README: 6 question texts repeat on the same context; nothing else is rejected.
    assert len(conv.queries) == 1184
    assert sorted({r["reason"] for r in conv.rejects}) == ["duplicate_question"]
