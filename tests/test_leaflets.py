import json
import re

import pytest

from bench.data import chunking, leaflets, tasks
from bench.errors import BenchError, Unavailable

LEAFLET = {"prospektus": [
    {"ilacAdi": "parol", "uyari": "Bu kullanma talimatını saklayınız.",
     "nedir": "PAROL ağrı kesici ve ateş düşürücü bir ilaçtır.\nEtkin madde parasetamoldür.",
     "nasilKullanilir": "PAROL yetişkinlerde 1-2 tablet olarak kullanılır.\nGünlük en yüksek doz 4000 mg'dır. "
                        "Aç ya da tok karnına alınabilir.",
     "yanEtkileri": "Çok seyrek olarak deri döküntüsü görülebilir."},
    {"ilacAdi": "voltarenEmulgel", "nasilKullanilir": "Jeli ağrıyan bölgeye günde 3-4 kez ince bir tabaka halinde sürünüz.",
     "saklanmasi": "25 °C altındaki oda sıcaklığında saklayınız."},
]}


def write(tmp_path, questions):
    leaf = tmp_path / "ilac.json"
    leaf.write_text(json.dumps(LEAFLET, ensure_ascii=False), encoding="utf-8")
    q = tmp_path / "questions.jsonl"
    q.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in questions), encoding="utf-8")
    spec = tmp_path / "leaf.yaml"
    spec.write_text(f"name: leaf\nformat: leaflets\npath: {leaf.name}\nquestions: {q.name}\n", encoding="utf-8")
    return spec


GOOD = [
    {"_id": "q1", "text": "Parol'ü aç karnına alabilir miyim?", "ilacAdi": "parol", "section": "nasilKullanilir",
     "evidence": "Aç ya da tok karnına alınabilir."},
    {"_id": "q2", "text": "Voltaren jeli günde kaç kez sürülür?", "ilacAdi": "voltarenEmulgel",
     "section": "nasilKullanilir", "evidence": "günde 3-4 kez ince bir tabaka"},
]


def test_leaflet_task_passages_carry_the_medicine_and_skip_boilerplate(tmp_path):
    data = tasks.load(tasks.load_spec(write(tmp_path, GOOD)))
    assert all("uyari" not in did for did in data.corpus)
    assert data.corpus["parol-nasilKullanilir-0"]["title"] == "Parol — nasıl kullanılır"
    assert data.corpus["voltarenEmulgel-saklanmasi-0"]["title"].startswith("Voltaren Emulgel")
    assert data.qrels == {"q1": {"parol-nasilKullanilir-0": 1}, "q2": {"voltarenEmulgel-nasilKullanilir-0": 1}}


@pytest.mark.parametrize("bad, expected", [
    ({"evidence": "bu cümle yok"}, "field 'evidence' is not found in the section"),
    ({"ilacAdi": "aspirinx"}, "field 'ilacAdi' names no medicine"),
    ({"section": "uyari"}, "field 'section' is not one of"),
    ({"text": ""}, "field 'text' is missing or empty"),
    ({"_id": "q2"}, "field '_id' repeats the id of an earlier question"),
])
def test_bad_question_gives_one_line_error(tmp_path, bad, expected):
    questions = [GOOD[1], {**GOOD[0], **bad}]
    with pytest.raises(BenchError, match="questions.jsonl:2: " + re.escape(expected)):
        tasks.load(tasks.load_spec(write(tmp_path, questions)))


def test_missing_leaflet_file_skips_with_where_to_get_it(tmp_path):
    spec = tmp_path / "leaf.yaml"
    spec.write_text("name: leaf\nformat: leaflets\npath: none.json\nquestions: q.jsonl\ndownload: https://example.org/x\n",
                    encoding="utf-8")
    with pytest.raises(Unavailable, match="https://example.org/x"):
        tasks.load(tasks.load_spec(spec))


def test_spans_cut_on_sentences_within_the_word_budget():
    text = "Bir iki üç. Dört beş altı. Yedi sekiz dokuz on. On bir."
    parts = chunking.spans(text, max_words=5)
    assert [text[a:b].strip() for a, b in parts] == ["Bir iki üç.", "Dört beş altı.", "Yedi sekiz dokuz on.", "On bir."]
    assert "".join(text[a:b] for a, b in parts).split() == text.split()


def test_evidence_straddling_a_cut_marks_both_passages():
    text = "Birinci cümle burada biter. İkinci cümle de burada biter."
    chunks = chunking.chunk_text("d", "t", text, "src", max_words=5)
    assert len(chunks) == 2
    assert leaflets.relevant(chunks, text, "burada biter. İkinci cümle de") == ["d-0", "d-1"]


def test_repo_questions_all_resolve_if_leaflets_present():
    spec = tasks.resolve(["drug_leaflets"])[0]
    if not spec.data_path.exists():
        pytest.skip(f"{spec.data_path} not here")
    data = tasks.load(spec)
    assert len(data.queries) >= 150 and len(data.corpus) > 500
    medicines = {next(iter(r)).split("-")[0] for r in data.qrels.values()}
    assert len(medicines) >= 50


UNANSWERABLE = {"_id": "u1", "text": "Lustral'i sabah mı almalıyım?", "kind": "unanswerable", "about": ["lustral"]}


def test_unanswerable_questions_load_without_qrels_and_kinds_are_kept(tmp_path):
    questions = [{**GOOD[0], "kind": "brand"}, {**GOOD[1], "kind": "complaint"}, UNANSWERABLE]
    data = tasks.load(tasks.load_spec(write(tmp_path, questions)))
    assert set(data.queries) == set(data.qrels) == {"q1", "q2"}
    assert data.unanswerable == {"u1": UNANSWERABLE["text"]}
    assert data.kinds == {"q1": "brand", "q2": "complaint", "u1": "unanswerable"}


@pytest.mark.parametrize("bad, expected", [
    ({**UNANSWERABLE, "ilacAdi": "parol", "section": "nedir", "evidence": "parasetamoldür"},
     "field 'evidence': a question of kind 'unanswerable' has no relevant passage"),
    ({**GOOD[0], "_id": "q9", "kind": "brands"}, "field 'kind' is not one of brand, ingredient, complaint, unanswerable"),
])
def test_unanswerable_with_qrels_or_unknown_kind_is_one_line_error(tmp_path, bad, expected):
    with pytest.raises(BenchError, match="questions.jsonl:2: " + re.escape(expected)):
        tasks.load(tasks.load_spec(write(tmp_path, [GOOD[1], bad])))


def test_unanswerable_questions_of_the_drug_task_name_nothing_the_leaflets_hold():
    """An 'unanswerable' question must not be answered by any leaflet: the medicines (brands and active
    ingredients) it is about occur nowhere in the leaflet file."""
    spec = tasks.load_spec(tasks.tasks_dir() / "drug_leaflets.yaml")
    if not spec.data_path.exists():
        pytest.skip("leaflet file not present")
    from bench.data.convert import turkish_lower

    text = turkish_lower(" ".join(v for item in leaflets.read(spec.data_path) for v in item.values()
                                  if isinstance(v, str)))
    rows = [json.loads(line) for line in spec.questions_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    unanswerable = [r for r in rows if r.get("kind") == "unanswerable"]
    assert len(unanswerable) >= 50
    named = [(r["_id"], a) for r in unanswerable if r["mentions"] in ("brand", "ingredient") for a in r["about"]]
    assert named and [x for x in named if turkish_lower(x[1]) in text] == []
    assert {r["mentions"] for r in unanswerable} == {"brand", "ingredient", "neither", "topic"}
    assert {r.get("kind") for r in rows} == {"brand", "ingredient", "complaint", "unanswerable"}
