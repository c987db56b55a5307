"""Defects found by trying bad inputs as a new user would (issue 21, item 9): each failed before its fix."""

import json

import pytest

from bench import cli
from bench.names import slug
from conftest import write_beir


def run(args):
    return cli.main([str(a) for a in args])


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]


# --- the gate ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tolerance", ["nan", "inf", "-inf", "-1", "x"])
def test_gate_tolerance_must_be_a_finite_non_negative_number(tmp_path, tiny_registry, capsys, tolerance):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"task": "tiny", "tolerance": 0.01, "schema": [], "records": [
        {"model": "nowhere", "variant": "bm25s", "ndcg_at_10": 1, "mrr_at_10": 1, "recall_at_1": 1, "recall_at_5": 1,
         "recall_at_10": 1}]}), encoding="utf-8")
    assert run(["check", "--baseline", baseline, "--models", tiny_registry, f"--tolerance={tolerance}"]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "--tolerance" in err[0]


def test_gate_library_refuses_a_tolerance_that_checks_nothing(tmp_path, tiny_registry):
    from bench.errors import BenchError
    from bench.measure import check

    with pytest.raises(BenchError, match="tolerance"):
        check.run(tmp_path / "b.json", tiny_registry, float("nan"))


# --- one task name twice -------------------------------------------------------------------------------------------

def _task(tmp_path, file: str, name: str) -> str:
    folder = write_beir(tmp_path / f"data-{file}")
    path = tmp_path / f"{file}.yaml"
    path.write_text(f"name: {name}\nformat: beir\npath: {folder}\n", encoding="utf-8")
    return str(path)


def test_one_task_name_twice_in_one_run_is_refused(tmp_path, tiny_registry, capsys):
    a, b = _task(tmp_path, "a", "same"), _task(tmp_path, "b", "same")
    out = tmp_path / "o"
    assert run(["run", "--models", tiny_registry, "--tasks", a, b, "--out", out, "--only", "bm25", "--no-speed"]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "'same'" in err[0] and "twice" in err[0]
    assert not (out / "results.json").exists()


def test_the_same_task_given_twice_is_refused(tmp_path, tiny_registry, tiny_task, capsys):
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, tiny_task, "--out", tmp_path / "o",
                "--only", "bm25", "--no-speed"]) == 2
    assert "twice" in error_lines(capsys)[0]


# --- names that collide after slugging -------------------------------------------------------------------------------

def test_slug_keeps_turkish_letters_and_plain_names():
    assert slug("tıp") != slug("tüp")
    assert slug("BM25 ı") != slug("BM25 ü")
    for name in ("drug_leaflets", "thquad_dev", "tr_mini_wiki", "xquad_tr"):
        assert slug(name) == name  # the committed reports keep their file names
    assert slug("İlaç") == "ilaç"


def test_slug_of_a_long_name_is_short_and_distinct():
    a, b = slug("x" * 600), slug("x" * 599 + "y")
    assert len(a) <= 100 and len(b) <= 100 and a != b


def test_tasks_whose_names_differ_only_in_turkish_letters_get_their_own_reports(tmp_path, tiny_registry):
    a, b = _task(tmp_path, "a", "tıp"), _task(tmp_path, "b", "tüp")
    out = tmp_path / "o"
    assert run(["run", "--models", tiny_registry, "--tasks", a, b, "--out", out, "--only", "bm25", "--no-speed"]) == 0
    assert "`tıp`" in (out / f"{slug('tıp')}.md").read_text(encoding="utf-8")
    assert "`tüp`" in (out / f"{slug('tüp')}.md").read_text(encoding="utf-8")
    recs = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert len({r["details"] for r in recs}) == 2


def test_tasks_whose_names_share_a_file_are_refused(tmp_path, tiny_registry, capsys):
    a, b = _task(tmp_path, "a", "a b"), _task(tmp_path, "b", "a/b")
    assert run(["run", "--models", tiny_registry, "--tasks", a, b, "--out", tmp_path / "o", "--only", "bm25",
                "--no-speed"]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "same file name" in err[0]


def _registry(tmp_path, *names: str) -> str:
    path = tmp_path / "models.yaml"
    entries = "".join(f"  - name: {json.dumps(n)}\n    kind: lexical\n    loader: bm25\n    source: bm25s\n"
                      for n in names)
    path.write_text("models:\n" + entries, encoding="utf-8")
    return str(path)


def test_models_whose_names_differ_only_in_turkish_letters_keep_their_own_details(tmp_path, tiny_task):
    models = _registry(tmp_path, "BM25 ı", "BM25 ü")
    out = tmp_path / "o"
    assert run(["run", "--models", models, "--tasks", tiny_task, "--out", out, "--no-speed"]) == 0
    recs = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert len(recs) == 2 and len({r["details"] for r in recs}) == 2


def test_registry_names_that_share_a_file_are_an_error(tmp_path, tiny_task, capsys):
    models = _registry(tmp_path, "BM25 a b", "BM25 a/b")
    assert run(["run", "--models", models, "--tasks", tiny_task, "--out", tmp_path / "o", "--no-speed"]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "same file name" in err[0]


def test_a_600_character_model_name_keeps_every_result(tmp_path, tiny_task):
    long = "BM25 " + "ç" * 600
    models = _registry(tmp_path, "BM25", long)
    out = tmp_path / "o"
    assert run(["run", "--models", models, "--tasks", tiny_task, "--out", out, "--no-speed"]) == 0
    recs = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {r["model"] for r in recs if r["status"] == "ok"} == {"BM25", long}


def test_a_newline_in_a_model_name_is_an_error(tmp_path, tiny_task, capsys):
    models = _registry(tmp_path, "BM25\nsecond line")
    assert run(["run", "--models", models, "--tasks", tiny_task, "--out", tmp_path / "o", "--no-speed"]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "name" in err[0] and "line break" in err[0]


# --- tracebacks instead of a one-line error --------------------------------------------------------------------------

def test_out_under_proc_is_a_one_line_error(tmp_path, tiny_registry, tiny_task, capsys):
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", "/proc/bench-out", "--only", "bm25",
                "--no-speed"]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "/proc/bench-out" in err[0]


def test_deeply_nested_json_is_a_one_line_error(tmp_path, tiny_registry, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "results.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert run(["report", "--out", tmp_path / "r", "--models", tiny_registry]) == 2
    err = error_lines(capsys)
    assert len(err) == 1 and "results.json" in err[0] and "nested" in err[0]


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("reader", ["convert", "leaflets", "jsonl", "scale"])
def test_deeply_nested_json_is_one_line_in_every_reader(tmp_path, reader):
    """Every JSON a user hands bench goes through one parser (bench.fileio), so none of them can raise RecursionError."""
    from bench.data import convert, leaflets
    from bench.errors import BenchError
    from bench import scale

    path = tmp_path / ("in.jsonl" if reader == "jsonl" else "in.json")
    path.write_text(DEEP + ("\n" if reader == "jsonl" else ""), encoding="utf-8")
    read = {"convert": convert.squad_pairs, "leaflets": leaflets.read, "scale": scale.read_records,
            "jsonl": lambda p: list(convert.jsonl_objects(p, "'question'"))}[reader]
    with pytest.raises(BenchError) as e:
        read(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value) and "nested" in str(e.value)


def test_ctrl_c_prints_interrupted_and_exits_130(tmp_path, tiny_registry, tiny_task, monkeypatch, capsys):
    from bench import runner

    def interrupted(**kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", interrupted)
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", tmp_path / "o"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["interrupted"]


# --- a task that fails to load ---------------------------------------------------------------------------------------

def test_a_task_that_fails_to_load_prints_once_and_writes_no_row_or_report(tmp_path, tiny_registry, tiny_task, capsys):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "corpus.jsonl").write_text('{"_id": "d", "text": \n', encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nformat: beir\npath: b\n", encoding="utf-8")
    out = tmp_path / "o"
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, broken, "--out", out, "--only", "bm25",
                "--no-speed"]) == 2
    err = capsys.readouterr().err
    assert err.count("malformed JSON") == 1
    recs = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert {r["task"] for r in recs} == {"tiny"}
    assert not (out / "broken.md").exists() and (out / "tiny.md").exists()


def test_the_only_task_failing_to_load_prints_its_error_once(tmp_path, tiny_registry, capsys):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "corpus.jsonl").write_text('{"_id": "d", "text": \n', encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nformat: beir\npath: b\n", encoding="utf-8")
    out = tmp_path / "o"
    assert run(["run", "--models", tiny_registry, "--tasks", broken, "--out", out, "--only", "bm25"]) == 2
    assert capsys.readouterr().err.count("malformed JSON") == 1
    assert not out.exists() or not any(out.iterdir())


# --- smaller ones ----------------------------------------------------------------------------------------------------

def test_no_speed_header_has_no_empty_gflops_figure(tmp_path, tiny_registry, tiny_task):
    out = tmp_path / "o"
    assert run(["run", "--models", tiny_registry, "--tasks", tiny_task, "--out", out, "--only", "bm25",
                "--no-speed"]) == 0
    header = (out / "tiny.md").read_text(encoding="utf-8").split("|")[0]
    assert "GFLOP/s" not in header and "GOP/s" not in header and "Not timed" in header


def test_an_answer_given_as_a_list_is_read_and_a_wrong_type_is_named(tmp_path):
    from bench.data import convert
    from bench.errors import BenchError

    rows = [{"question": "Van Gölü neden tuzludur?", "context": "Van Gölü'nün suyu sodalıdır ve tuzludur.",
             "answer": ["denizden", "sodalı"]}]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    conv = convert.convert_file(path, "jsonl")
    assert len(conv.queries) == 1  # checked against its context: 'sodalı' is there
    rows[0]["answer"] = ["denizden", "gölden"]
    path.write_text(json.dumps(rows[0], ensure_ascii=False) + "\n", encoding="utf-8")
    assert not convert.convert_file(path, "jsonl").queries  # no listed answer is in the context: not kept blind
    rows[0]["answer"] = {"text": "sodalı"}
    path.write_text(json.dumps(rows[0], ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(BenchError, match=r"p.jsonl:1: field 'answer'"):
        convert.convert_file(path, "jsonl")


def test_a_long_query_is_not_echoed_in_full(tmp_path, tiny_registry, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Van Gölü Türkiye'nin en büyük gölüdür. Suyu sodalıdır.", encoding="utf-8")
    idx = tmp_path / "idx"
    assert run(["search", "index", docs, "--index", idx, "--model", "bm25", "--models", tiny_registry]) == 0
    capsys.readouterr()
    question = "Van Gölü neden tuzludur? " * 4000  # 100,000 characters
    assert run(["search", "query", question, "--index", idx, "--models", tiny_registry,
                "--results", tmp_path / "none.json"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert len(head) < 400 and "100,000 characters" in head


def test_a_json_that_is_not_a_leaflet_file_is_skipped_with_its_reason(tmp_path, tiny_registry, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Van Gölü Türkiye'nin en büyük gölüdür.", encoding="utf-8")
    (docs / "ayarlar.json").write_text('{"renk": "mavi"}', encoding="utf-8")
    (docs / "bos.txt").write_text("   \n", encoding="utf-8")
    assert run(["search", "index", docs, "--index", tmp_path / "idx", "--model", "bm25",
                "--models", tiny_registry]) == 0
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "skipped ayarlar.json: a .json file that is not a leaflet file" in out
    assert "skipped bos.txt: no text in it" in out and "skipped 2" in out
