"""Bad or unusual input: nothing dropped without a word, no traceback, no data copied into an error."""

import json
import logging
import re

import pytest

from bench import cli
from bench.data import convert, leaflets, tasks
from bench.errors import BenchError
from bench.models.lexical import BM25
from conftest import write_beir
from test_convert import CTX_A, CTX_C, squad
from test_leaflets import GOOD, LEAFLET

DECOMPOSED_ISTANBUL = "I\u0307stanbul"  # İ written as I + combining dot above, as some editors and PDFs do


def run(args):
    return cli.main([str(a) for a in args])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


# --- 1. line splitting ------------------------------------------------------------------------------------------

def test_csv_quoted_field_spanning_lines_keeps_the_line_break_as_a_space(tmp_path):
    cv = tmp_path / "p.csv"
    cv.write_text('question,context\nBaşkent neresi?,"Türkiye\'nin başkenti\nAnkara\'dır."\nVan nerede?,x\n',
                  encoding="utf-8", newline="")
    conv = convert.convert_file(cv, "csv")
    assert [d["text"] for d in conv.corpus.values()][0] == "Türkiye'nin başkenti Ankara'dır."


def test_csv_error_names_the_line_a_record_starts_on(tmp_path):
    cv = tmp_path / "p.csv"
    cv.write_text('question,context\na,"two\nlines"\n,b\n', encoding="utf-8", newline="")
    conv = convert.convert_file(cv, "csv")
    assert conv.rejects[0]["where"] == "line 4"


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085"])
def test_unicode_line_separators_inside_jsonl_values_are_text(tmp_path, sep):
    jl = tmp_path / "p.jsonl"
    rows = [{"question": "Van nerede?", "context": CTX_A.replace(". ", "." + sep)}, {"question": "Erciyes?", "context": CTX_C}]
    jl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert sep in jl.read_text(encoding="utf-8")
    conv = convert.convert_file(jl, "jsonl")
    assert len(conv.queries) == 2
    folder = write_beir(tmp_path / "t", docs={"d1": ("Başlık", "bir" + sep + "iki")}, queries={"q1": ("soru" + sep, "d1")})
    data = tasks.read_beir(folder)
    assert data.corpus["d1"]["text"] == "bir" + sep + "iki" and data.qrels == {"q1": {"d1": 1}}


# --- 2. Unicode normalisation ------------------------------------------------------------------------------------

def test_bm25_keeps_a_decomposed_dotted_capital_i():
    bm25 = BM25()
    assert bm25.tokenize(DECOMPOSED_ISTANBUL) == bm25.tokenize("İstanbul") == bm25.tokenize("istanbul")
    assert bm25.tokenize("i\u0307stanbul") == bm25.tokenize("istanbul")  # str.lower() of İ gives i + dot


def test_text_is_nfc_when_read_from_beir_and_leaflets(tmp_path):
    folder = write_beir(tmp_path / "t", docs={"d1": (DECOMPOSED_ISTANBUL, DECOMPOSED_ISTANBUL + " büyük")},
                        queries={"q1": (DECOMPOSED_ISTANBUL + "?", "d1")})
    data = tasks.read_beir(folder)
    assert data.corpus["d1"] == {"title": "İstanbul", "text": "İstanbul büyük"} and data.queries["q1"] == "İstanbul?"
    leaflet = json.loads(json.dumps(LEAFLET))
    leaflet["prospektus"][0]["yanEtkileri"] = "Seyrek olarak I\u0307shal görülebilir."
    (tmp_path / "ilac.json").write_text(json.dumps(leaflet, ensure_ascii=False), encoding="utf-8")
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"_id": "q1", "text": "İshal olur mu?", "ilacAdi": "parol", "section": "yanEtkileri",
                             "evidence": "İshal görülebilir"}, ensure_ascii=False) + "\n", encoding="utf-8")
    data = leaflets.task_data(tmp_path / "ilac.json", q, "leaf")
    assert data.qrels == {"q1": {"parol-yanEtkileri-0": 1}}
    assert "İshal" in data.corpus["parol-yanEtkileri-0"]["text"]


def test_dense_input_is_nfc():
    from bench.models.encoders import Dense
    from bench.models.registry import ModelEntry

    dense = Dense(ModelEntry("m", "bi-encoder", "sentence-transformers", "x", query_prefix="soru: "), "torch-fp32",
                  embed=None, fingerprint="")
    assert dense.prepare([DECOMPOSED_ISTANBUL], "query") == ["soru: İstanbul"]


# --- 3. duplicate source ids -------------------------------------------------------------------------------------

def _squad_file(tmp_path, qas_by_context):
    data = {"data": [{"title": "T", "paragraphs": [{"context": c, "qas": qas} for c, qas in qas_by_context]}]}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_distinct_questions_sharing_a_source_id_are_kept_under_new_ids(tmp_path, capsys):
    path = _squad_file(tmp_path, [
        (CTX_A, [{"id": "7", "question": "En büyük göl hangisi?"}, {"id": "7", "question": "Suyu nasıldır?"},
                 {"id": "7-2", "question": "Göl nerededir?"}, {"id": "7", "question": "Suyu nasıldır?"}]),
        (CTX_C, [{"id": "7", "question": "Erciyes nerededir?"}]),
    ])
    conv = convert.convert_file(path, "squad")
    assert sorted(conv.queries.values()) == ["En büyük göl hangisi?", "Erciyes nerededir?", "Göl nerededir?",
                                             "Suyu nasıldır?"]
    assert conv.queries["7"] == "En büyük göl hangisi?" and conv.queries["7-2"] == "Göl nerededir?"
    assert len(set(conv.queries)) == 4
    reasons = sorted(r["reason"] for r in conv.rejects)
    # The repeated (question, context) is a true duplicate; the two other 7s only got new ids.
    assert reasons == ["duplicate_question"] + ["rekeyed_duplicate_id"] * 2
    assert convert.dropped_questions(conv.rejects) == {"duplicate_question": 1}
    assert run(["convert", path, "--out", tmp_path / "out"]) == 0
    out = capsys.readouterr().out
    assert "4 questions" in out and "2 questions re-keyed" in out


# --- 4. dropped questions are reported by `bench run` ------------------------------------------------------------

def test_run_prints_and_records_dropped_questions(tmp_path, tiny_registry, capsys):
    task = tmp_path / "sq.yaml"
    task.write_text(f"name: sq\nformat: squad\npath: {squad(tmp_path).name}\n", encoding="utf-8")
    out = tmp_path / "o"
    assert run(["run", "--models", tiny_registry, "--tasks", task, "--out", out, "--only", "bm25", "--no-speed"]) == 0
    printed = capsys.readouterr()
    assert "sq: dropped 5 of 7 questions" in printed.out + printed.err
    rec, = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert rec["n_dropped"] == 5
    assert rec["dropped"] == {"answer_not_in_context": 1, "duplicate_question": 1, "empty_question": 1,
                              "question_in_two_contexts": 2}


# --- 5. selections that run nothing ------------------------------------------------------------------------------

def test_variant_typo_is_an_error_naming_the_known_variants(tmp_path, tiny_registry, tiny_task, capsys):
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", tmp_path / "o", "--variants",
                "onnx-int9"]) == 2
    err = one_error_line(capsys)
    assert "onnx-int9" in err and "onnx-int8" in err and "bm25s" in err


def test_only_task_without_data_exits_2(tmp_path, tiny_registry, capsys):
    task = tmp_path / "x.yaml"
    task.write_text("name: x\nformat: squad\npath: missing.json\n", encoding="utf-8")
    assert run(["run", "--models", tiny_registry, "--tasks", task, "--out", tmp_path / "o", "--only", "bm25"]) == 2
    assert "missing.json" in capsys.readouterr().err


# --- 6. one-line errors instead of tracebacks --------------------------------------------------------------------

@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["data"][0].update(title=["a"]), "data[0].title"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(text=5), "data[0].paragraphs[0].qas[0].answers[0].text"),
    (lambda d: d["data"][0]["paragraphs"][0].update(qas={"id": "x"}), "data[0].paragraphs[0].qas"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].update(answers="Van"), "data[0].paragraphs[0].qas[0].answers"),
])
def test_squad_field_of_the_wrong_type_is_named(tmp_path, mutate, field):
    data = json.loads(squad(tmp_path).read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(BenchError, match=re.escape(f"bad.json: {field}: expected a")):
        convert.convert_file(path, "squad")


def test_csv_long_field_is_read_and_broken_quoting_is_a_one_line_error(tmp_path):
    cv = tmp_path / "p.csv"
    cv.write_text("question,context\n" + 'a,"' + "x " * 100_000 + '"\n', encoding="utf-8")
    assert len(convert.convert_file(cv, "csv").corpus) == 1  # a long paragraph is data, not an error
    # An unclosed quote would otherwise swallow every later row into one field, silently.
    cv.write_text('question,context\na,b\nc,"d\ne,f\n', encoding="utf-8")
    with pytest.raises(BenchError, match=r"p.csv:3: malformed CSV") as err:
        convert.convert_file(cv, "csv")
    assert "\n" not in str(err.value)


def test_leaflet_section_that_is_not_text_fails_only_its_task(tmp_path, tiny_registry, tiny_task, capsys):
    leaflet = json.loads(json.dumps(LEAFLET))
    leaflet["prospektus"][1]["nasilKullanilir"] = ["Jeli", "sürünüz."]
    spec = tmp_path / "leaf.yaml"
    (tmp_path / "ilac.json").write_text(json.dumps(leaflet, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "q.jsonl").write_text(json.dumps(GOOD[0], ensure_ascii=False) + "\n", encoding="utf-8")
    spec.write_text("name: leaf\nformat: leaflets\npath: ilac.json\nquestions: q.jsonl\n", encoding="utf-8")
    with pytest.raises(BenchError, match=r"ilac.json: prospektus\[1\]: field 'nasilKullanilir' is not a string"):
        tasks.load(tasks.load_spec(spec))
    out = tmp_path / "o"
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, spec, "--out", out, "--only", "bm25",
                "--no-speed"]) == 2
    recs = {r["task"]: r["status"] for r in json.loads((out / "results.json").read_text(encoding="utf-8"))}
    assert recs == {"tiny": "ok"}  # the malformed task's error is the exit status, not a row
    assert "field 'nasilKullanilir' is not a string" in capsys.readouterr().err


def test_duplicate_medicine_in_a_leaflet_file_is_an_error(tmp_path):
    leaflet = {"prospektus": LEAFLET["prospektus"] + [LEAFLET["prospektus"][0]]}
    path = tmp_path / "ilac.json"
    path.write_text(json.dumps(leaflet, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(BenchError, match=r"prospektus\[2\]: field 'ilacAdi' repeats prospektus\[0\]"):
        leaflets.read(path)


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_threads_must_be_a_positive_integer(tmp_path, tiny_registry, tiny_task, capsys, value):
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--threads", value, "--out", tmp_path / "o"]) == 2
    assert "--threads" in one_error_line(capsys)


def test_convert_out_naming_a_file(tmp_path, capsys):
    out = tmp_path / "out.txt"
    out.write_text("keep me", encoding="utf-8")
    assert run(["convert", squad(tmp_path), "--out", out]) == 2
    assert "--out" in one_error_line(capsys) and out.read_text(encoding="utf-8") == "keep me"


def test_hub_only_model_offline_is_a_one_line_error(tmp_path, tiny_registry, tiny_task, capsys):
    assert run(["inspect", "--models", tiny_registry, "--model", "hub-only", "--task", tiny_task, "--query", "x"]) == 2
    assert "hf download someone/not-downloaded-model" in one_error_line(capsys)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Van Gölü büyüktür.", encoding="utf-8")
    assert run(["search", "index", docs, "--models", tiny_registry, "--model", "hub-only", "--index", tmp_path / "i"]) == 2
    assert "hf download" in one_error_line(capsys)
    assert run(["search", "index", docs, "--models", tiny_registry, "--model", "tiny", "--index", tmp_path / "i"]) == 0
    capsys.readouterr()
    assert run(["search", "query", "göl", "--models", tiny_registry, "--index", tmp_path / "i", "--rerank",
                "hub-only"]) == 2
    assert "hf download" in one_error_line(capsys)


def test_inspect_and_search_need_a_positive_k(tmp_path, tiny_registry, tiny_task, capsys):
    assert run(["inspect", "--models", tiny_registry, "--model", "bm25", "--task", tiny_task, "--query", "x",
                "-k", "0"]) == 2
    assert "-k" in one_error_line(capsys)


@pytest.mark.parametrize("field, value", [("ndcg_at_10", "high"), ("n_queries", 2.5), ("status", 3),
                                          ("latency_p50_ms", True), ("stages", "a")])
def test_report_rejects_results_of_the_wrong_type(tmp_path, tiny_registry, tiny_task, capsys, field, value):
    out = tmp_path / "o"
    run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", out, "--only", "bm25", "--no-speed"])
    path = out / "results.json"
    recs = json.loads(path.read_text(encoding="utf-8"))
    recs[0][field] = value
    path.write_text(json.dumps(recs), encoding="utf-8")
    capsys.readouterr()
    assert run(["report", "--out", out]) == 2
    err = one_error_line(capsys)
    assert "record [0]" in err and f"'{field}'" in err


# --- 7. errors never quote file contents or expanded variables ---------------------------------------------------

SECRET = "hunter2-s3cret"


def test_csv_header_error_does_not_quote_the_file(tmp_path, tiny_registry, capsys):
    data = tmp_path / "passwd"
    data.write_text(f"root:x:0:0:{SECRET}:/root:/bin/bash\n", encoding="utf-8")
    task = tmp_path / "p.yaml"
    task.write_text(f"name: p\nformat: csv\npath: {data.name}\n", encoding="utf-8")
    out = tmp_path / "o"
    assert run(["run", "--models", tiny_registry, "--tasks", task, "--out", out, "--only", "bm25", "--no-speed"]) == 2
    err = capsys.readouterr().err
    assert "CSV header" in err and SECRET not in err
    for f in out.iterdir():
        if f.is_file():
            assert SECRET not in f.read_text(encoding="utf-8"), f


def test_errors_name_the_path_as_written_not_the_expanded_variable(tmp_path, tiny_registry, monkeypatch, capsys):
    secret_dir = tmp_path / SECRET
    secret_dir.mkdir()
    (secret_dir / "p.csv").write_text("soru,metin\na,b\n", encoding="utf-8")
    monkeypatch.setenv("MY_DATA", str(secret_dir))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nformat: csv\npath: ${MY_DATA}/p.csv\n", encoding="utf-8")
    missing = tmp_path / "missing.yaml"
    missing.write_text("name: missing\nformat: csv\npath: ${MY_DATA}/none.csv\n", encoding="utf-8")
    out = tmp_path / "o"
    assert run(["run", "--models", tiny_registry, "--tasks", bad, missing, "--out", out, "--only", "bm25"]) == 2
    err = capsys.readouterr().err
    assert "${MY_DATA}/p.csv" in err and "${MY_DATA}/none.csv" in err and SECRET not in err
    for f in out.iterdir():
        if f.is_file():
            assert SECRET not in f.read_text(encoding="utf-8"), f


@pytest.mark.parametrize("name, mutate", [
    ("corpus.jsonl", lambda ls: ls + [json.dumps({"_id": SECRET, "text": "a"})] * 2),
    ("corpus.jsonl", lambda ls: [json.dumps({"_id": SECRET, "text": " "})] + ls),
    ("qrels/test.tsv", lambda ls: ls + [f"q1\t{SECRET}\t1"]),
    ("qrels/test.tsv", lambda ls: ls + [f"{SECRET}\tsaglik-1\t1"]),
    ("qrels/test.tsv", lambda ls: ls + [f"q1\tsaglik-1\t{SECRET}"]),
])
def test_beir_errors_do_not_quote_ids_or_values(tmp_path, name, mutate):
    folder = write_beir(tmp_path / "t")
    path = folder / name
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(mutate(lines)) + "\n", encoding="utf-8")
    with pytest.raises(BenchError) as err:
        tasks.read_beir(folder)
    assert SECRET not in str(err.value) and f"{name}:" in str(err.value)


@pytest.mark.parametrize("bad", [{"ilacAdi": SECRET}, {"section": SECRET}, {"evidence": SECRET}, {"_id": "q2"}])
def test_leaflet_question_errors_do_not_quote_values(tmp_path, bad):
    from test_leaflets import write

    questions = [GOOD[1], {**GOOD[0], **bad}]
    with pytest.raises(BenchError) as err:
        tasks.load(tasks.load_spec(write(tmp_path, questions)))
    assert "questions.jsonl:2: field" in str(err.value) and SECRET not in str(err.value)


# --- 8. no library debug chatter -----------------------------------------------------------------------------

def test_bm25s_does_not_log_debug_lines(caplog):
    caplog.set_level(logging.DEBUG)
    BM25().scores(["göl"], ["Van Gölü büyüktür.", "Dağ yüksektir."])
    assert not [r for r in caplog.records if r.name.startswith("bm25s") and r.levelno < logging.WARNING]


# --- more bad input a new user might give -------------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    (["convert", "{tmp}", "--out", "{tmp}/o"], "is a folder; expected a file"),
    (["convert", "{squad}", "--out", "{file}/o"], "--out {file}/o: cannot write there"),
    (["run", "--models", "{registry}", "--tasks", "{task}", "--out", "{file}"], "--out {file}: names a file"),
    (["inspect", "--models", "{registry}", "--model", "bm25", "--task", "{task}", "--query", "x", "--variant",
      "onnx-int8"], "--variant: 'bm25' has no variant 'onnx-int8'"),
    (["inspect", "--models", "{registry}", "--model", "bm25", "--task", "{task}", "--query", "  "], "question is empty"),
    (["search", "index", "{file}", "--models", "{registry}", "--model", "hub-only", "--index", "{tmp}/i"],
     "{file}: not a folder"),
    (["search", "index", "{docs}", "--models", "{registry}", "--model", "tiny", "--index", "{docs}"],
     "holds files that are not a search index"),
    (["report", "--out", "{empty_results}"], "holds no result records"),
])
def test_more_bad_input_gives_one_line_errors(tmp_path, tiny_registry, tiny_task, capsys, args, expected):
    (tmp_path / "file.txt").write_text("a file, not a folder", encoding="utf-8")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Van Gölü büyüktür.", encoding="utf-8")
    (tmp_path / "er").mkdir()
    (tmp_path / "er" / "results.json").write_text("[]", encoding="utf-8")
    names = {"tmp": tmp_path, "file": tmp_path / "file.txt", "registry": tiny_registry, "task": tiny_task,
             "squad": squad(tmp_path), "docs": tmp_path / "docs", "empty_results": tmp_path / "er"}
    assert run([a.format(**names) for a in args]) == 2
    assert expected.format(**names) in one_error_line(capsys)
    assert (tmp_path / "docs" / "a.txt").exists()


def test_bad_bench_threads_variable_is_named(tmp_path, tiny_registry, tiny_task, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_THREADS", "all")
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", tmp_path / "o"]) == 2
    assert "BENCH_THREADS" in one_error_line(capsys)
