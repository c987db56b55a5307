import json

import pytest

from bench.data import tasks
from bench.errors import BenchError, Unavailable
from conftest import write_beir


def test_reads_beir_folder(tmp_path):
    data = tasks.read_beir(write_beir(tmp_path / "t"))
    assert len(data.corpus) == 6 and len(data.queries) == 6
    assert data.qrels["q2"] == {"saglik-2": 1}
    assert data.doc_text("saglik-1").startswith("Aşılar\n")


def test_task_yaml_resolves_relative_path(tiny_task):
    spec = tasks.load_spec(tiny_task)
    data = tasks.load(spec)
    assert spec.name == "tiny" and len(data.corpus) == 6


def test_resolve_by_name_and_by_path(tiny_task):
    assert tasks.resolve([str(tiny_task)])[0].name == "tiny"
    assert tasks.resolve(["tr_mini_wiki"])[0].format == "beir"
    with pytest.raises(BenchError, match="unknown task 'nope'"):
        tasks.resolve(["nope"])


def test_missing_data_is_unavailable_and_says_where_to_get_it(tmp_path):
    spec = tmp_path / "x.yaml"
    spec.write_text("name: x\nformat: squad\npath: missing.json\ndownload: https://example.org/x.json\n", encoding="utf-8")
    with pytest.raises(Unavailable) as err:
        tasks.load(tasks.load_spec(spec))
    assert "not found" in err.value.reason and "https://example.org/x.json" in err.value.reason


def _corrupt(folder, name, mutate):
    path = folder / name
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(mutate(lines)) + "\n", encoding="utf-8")


@pytest.mark.parametrize("name, mutate, expected", [
    ("corpus.jsonl", lambda ls: ls + [ls[0]], "corpus.jsonl:7: field '_id' repeats the document id of line 1"),
    ("queries.jsonl", lambda ls: ls[:2] + ["{not json"] + ls[2:], "queries.jsonl:3: malformed JSON"),
    ("corpus.jsonl", lambda ls: [], "empty corpus"),
    ("corpus.jsonl", lambda ls: [json.dumps({"_id": "x", "text": "  "})] + ls, "corpus.jsonl:1: field 'text' of the document"),
    ("qrels/test.tsv", lambda ls: ls + ["q1\tno-such-doc\t1"], "test.tsv:8: column corpus-id names no document"),
    ("qrels/test.tsv", lambda ls: ls + ["q99\tsaglik-1\t1"], "test.tsv:8: column query-id names no query in queries.jsonl"),
    ("qrels/test.tsv", lambda ls: ls + ["q1 saglik-1 1"], "expected 3 tab-separated columns"),
])
def test_bad_task_data_gives_one_line_error(tmp_path, name, mutate, expected):
    folder = write_beir(tmp_path / "t")
    _corrupt(folder, name, mutate)
    with pytest.raises(BenchError) as err:
        tasks.read_beir(folder)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_non_utf8_corpus_names_the_line(tmp_path):
    folder = write_beir(tmp_path / "t")
    with open(folder / "corpus.jsonl", "ab") as f:
        f.write('{"_id": "z", "text": "ılık su"}\n'.encode("iso-8859-9"))
    with pytest.raises(BenchError, match=r"corpus.jsonl:7: not UTF-8"):
        tasks.read_beir(folder)


def test_bad_task_yaml(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("name: t\nformat: parquet\npath: x\n", encoding="utf-8")
    with pytest.raises(BenchError, match="field 'format' is 'parquet'"):
        tasks.load_spec(p)


def _add_query(folder, row):
    with open(folder / "queries.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def test_beir_query_of_kind_unanswerable_is_kept_without_qrels(tmp_path):
    folder = write_beir(tmp_path / "t")
    _add_query(folder, {"_id": "u1", "text": "Lustral'i sabah mı almalıyım?", "kind": "unanswerable"})
    _add_query(folder, {"_id": "other-split", "text": "Bu soru başka bir bölümün."})
    data = tasks.read_beir(folder)
    assert data.unanswerable == {"u1": "Lustral'i sabah mı almalıyım?"} and "u1" not in data.queries
    assert data.kinds == {"u1": "unanswerable"}


def test_beir_unanswerable_query_with_qrels_is_one_line_error(tmp_path):
    folder = write_beir(tmp_path / "t")
    _add_query(folder, {"_id": "u1", "text": "Lustral'i sabah mı almalıyım?", "kind": "unanswerable"})
    with open(folder / "qrels" / "test.tsv", "a", encoding="utf-8") as f:
        f.write("u1\tsaglik-1\t1\n")
    with pytest.raises(BenchError, match=r"test.tsv:8: column query-id names a question of kind 'unanswerable'"):
        tasks.read_beir(folder)
