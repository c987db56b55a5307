"""`bench convert` repairs what it can: each tier with Turkish examples, several contexts, orphans, `lines`."""

import json

import pytest

from bench import cli
from bench.data import convert, repair
from bench.errors import BenchError
from bench.models.lexical import BM25

CTX_IST = "Orhan Pamuk 1952'de İstanbul'da doğdu. Yazarın ilk romanı Cevdet Bey ve Oğulları'dır."
CTX_IZMIR = "İzmir'de kışlar ılık geçer. Kordon boyu akşamları kalabalıktır."
CTX_TBMM = "TBMM 23 Nisan 1920'de Ankara'da açıldı."


@pytest.mark.parametrize("answer, context, tier, after", [
    ("İstanbul", CTX_IST, "exact", "İstanbul"),  # a suffix after the proper noun: still a verbatim span
    ("İZMİR", CTX_IZMIR, "case", "İzmir"),  # str.lower() would give i̇zmi̇r, not izmir
    ("ILIK", CTX_IZMIR, "case", "ılık"),  # I -> ı, not i
    ("İstanbul’da", CTX_IST, "normalised", "İstanbul'da"),  # typographic apostrophe
    ("istanbulda", CTX_IST, "normalised", "İstanbul'da"),  # apostrophe dropped and lower case
    ("T.B.M.M.   23 Nisan", CTX_TBMM, "normalised", "TBMM 23 Nisan"),  # punctuation and whitespace
    ("İstanbul'a", CTX_IST, "fuzzy", "İstanbul'da"),  # another case suffix on the proper noun
    ("Cevdet Bey ve Ogulları", CTX_IST, "fuzzy", "Cevdet Bey ve Oğulları'dır"),  # a lost ğ
])
def test_each_tier_realigns_a_turkish_answer_to_its_span(answer, context, tier, after):
    got = repair.align(answer, context, repair.FUZZY_THRESHOLD)
    assert got is not None and got.tier == tier and got.after == after
    assert (got.score == 100.0) == (tier != "fuzzy") and got.score >= repair.FUZZY_THRESHOLD


@pytest.mark.parametrize("answer, context", [
    ("ilik", CTX_IZMIR),  # bone marrow is not 'ılık' (lukewarm): Turkish case folding keeps ı and i apart
    ("1953", CTX_IST),  # one digit off in four is a different year
    ("Ankara", CTX_IST),
])
def test_answers_that_are_not_in_the_context_stay_unaligned(answer, context):
    assert repair.align(answer, context, repair.FUZZY_THRESHOLD) is None


def test_fuzzy_threshold_is_what_decides():
    assert repair.align("İstanbul'a", CTX_IST, 99) is None
    assert repair.align("İstanbul'a", CTX_IST, 90).tier == "fuzzy"


def _jsonl(tmp_path, rows, name="p.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {"id": "q1", "question": "Orhan Pamuk nerede doğdu?", "context": CTX_IST, "answer": "İstanbul’da"},
    {"id": "q2", "question": "İzmir'de kışlar nasıl geçer?", "context": CTX_IZMIR, "answer": "ILIK"},
    {"id": "q3", "question": "Meclis ne zaman açıldı?", "context": CTX_TBMM, "answer": "23 Nisan 1920"},
    {"id": "q4", "question": "Meclis ne zaman açıldı?", "context": CTX_IST, "answer": "1952"},
    {"id": "q5", "question": "Yazarın ilk romanı hangisidir?", "context": CTX_IST, "answer": "Cevdet Bey"},
]


def test_repair_keeps_what_fits_and_records_every_change(tmp_path):
    path = _jsonl(tmp_path, ROWS)
    plain = convert.convert_file(path, "jsonl")
    fixed = convert.convert_file(path, "jsonl", repair.Options())
    assert set(plain.queries) == {"q5"}  # today: q1, q2 answer_not_in_context; q3/q4 one question, two contexts
    assert set(fixed.queries) == {"q1", "q2", "q3", "q5"}
    assert len(fixed.qrels["q3"]) == 2  # the question asked of two contexts: two relevant passages
    tiers = {r["id"]: r["tier"] for r in fixed.repairs}
    assert tiers == {"q1": "normalised", "q2": "case", "q3": "several_contexts"}
    q1 = next(r for r in fixed.repairs if r["id"] == "q1")
    assert (q1["before"], q1["after"], q1["score"]) == ("İstanbul’da", "İstanbul'da", 100.0)
    # A question that already fitted is never changed: q5 is the same query with the same qrels either way.
    assert fixed.queries["q5"] == plain.queries["q5"] and fixed.qrels["q5"] == plain.qrels["q5"]
    assert not [r for r in fixed.rejects if r.get("dropped") == "question"]


def test_all_fitting_data_converts_identically_with_repair(tmp_path):
    path = _jsonl(tmp_path, [ROWS[4], {**ROWS[2], "id": "q9"}])
    a, b = convert.convert_file(path, "jsonl"), convert.convert_file(path, "jsonl", repair.Options())
    assert (a.corpus, a.queries, a.qrels, a.rejects) == (b.corpus, b.queries, b.qrels, b.rejects) and b.repairs == []


def test_orphan_question_is_matched_by_its_answer_and_bm25_above_the_confidence(tmp_path):
    rows = [ROWS[4], {**ROWS[2], "id": "q9"}, {"id": "q6", "question": "İzmir'de kışlar nasıl geçer?", "context": CTX_IZMIR},
            {"id": "o1", "question": "Orhan Pamuk hangi yıl doğdu?", "context": "", "answer": "1952"},
            {"id": "o2", "question": "Hangi şehir?", "context": "", "answer": "Mars"},
            {"id": "o3", "question": "Ne zaman?", "context": "", "answer": "'da"}]
    conv = convert.convert_file(_jsonl(tmp_path, rows), "jsonl", repair.Options(ranker=BM25()))
    doc_ist = next(iter(conv.qrels["q5"]))
    assert conv.qrels["o1"] == {doc_ist: 1}
    o1 = next(r for r in conv.repairs if r["id"] == "o1")
    assert o1["tier"] == "orphan" and o1["score"] >= repair.ORPHAN_CONFIDENCE and o1["after"] == doc_ist
    reasons = {r["id"]: r["reason"] for r in conv.rejects if r.get("dropped") == "question"}
    assert reasons == {"o2": "orphan_answer_in_no_context", "o3": "orphan_low_confidence"}


def test_orphans_without_repair_are_rejected_as_today(tmp_path):
    rows = [ROWS[4], {"id": "o1", "question": "Orhan Pamuk hangi yıl doğdu?", "context": "", "answer": "1952"}]
    conv = convert.convert_file(_jsonl(tmp_path, rows), "jsonl")
    assert [r["reason"] for r in conv.rejects] == ["empty_context"]


def _lines(tmp_path, questions, contexts):
    q, c = tmp_path / "questions.txt", tmp_path / "contexts.txt"
    q.write_text("\n".join(questions) + "\n", encoding="utf-8")
    c.write_text("\n".join(contexts) + "\n", encoding="utf-8")
    return q, c


def test_lines_format_aligns_what_agrees_and_matches_the_rest(tmp_path):
    q, c = _lines(tmp_path,
                  ["Orhan Pamuk nerede doğdu?\tİstanbul", "Meclis ne zaman açıldı?\t23 Nisan 1920",
                   "İzmir'de kışlar nasıl geçer?\tılık", "Orhan Pamuk hangi yıl doğdu?\t1952"],
                  [CTX_IST, CTX_IZMIR, "", CTX_TBMM])  # lines 2 and 4 swapped their contexts, line 3 lost its own
    conv = convert.convert_file(q, "lines", repair.Options(ranker=BM25()), contexts=c)
    text = {d: doc["text"] for d, doc in conv.corpus.items()}
    gold = {conv.queries[qid]: text[next(iter(rel))] for qid, rel in conv.qrels.items()}
    assert gold == {"Orhan Pamuk nerede doğdu?": CTX_IST, "Meclis ne zaman açıldı?": CTX_TBMM,
                    "İzmir'de kışlar nasıl geçer?": CTX_IZMIR, "Orhan Pamuk hangi yıl doğdu?": CTX_IST}
    assert sorted(r["tier"] for r in conv.repairs) == ["orphan", "orphan", "orphan"]
    assert all(r["id"] in conv.queries for r in conv.repairs)  # each repair names the id its question is kept under


def test_lines_pair_with_no_common_length_is_one_line_error(tmp_path):
    q, c = _lines(tmp_path, ["Bir?", "İki?", "Üç?"], [CTX_IST, CTX_IZMIR])
    with pytest.raises(BenchError, match=r"questions.txt: 3 questions but .*contexts.txt: 2 contexts"):
        convert.convert_file(q, "lines", repair.Options(ranker=BM25()), contexts=c)


def test_cli_repairs_by_default_writes_repairs_jsonl_and_counts_per_tier(tmp_path, capsys):
    path, out = _jsonl(tmp_path, ROWS), tmp_path / "out"
    assert cli.main(["convert", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "repairs: case 1, normalised 1, several_contexts 1 (details in" in printed
    rows = [json.loads(x) for x in (out / "repairs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["tier"] for r in rows} == {"case", "normalised", "several_contexts"}
    assert all({"tier", "before", "after", "score"} <= set(r) for r in rows)
    assert cli.main(["convert", str(path), "--out", str(tmp_path / "plain"), "--no-repair"]) == 0
    assert "repairs: none" in capsys.readouterr().out
    assert (tmp_path / "plain" / "repairs.jsonl").read_text(encoding="utf-8") == ""


@pytest.mark.parametrize("value", ["0", "101", "-5", "abc"])
def test_fuzzy_threshold_out_of_range_is_one_line_error(tmp_path, capsys, value):
    assert cli.main(["convert", str(_jsonl(tmp_path, ROWS)), "--out", str(tmp_path / "o"),
                     "--fuzzy-threshold", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--fuzzy-threshold" in err and err.count("\n") == 1


def test_cli_lines_needs_contexts_and_checks_lengths(tmp_path, capsys):
    q, c = _lines(tmp_path, ["Bir?", "İki?", "Üç?"], [CTX_IST, CTX_IZMIR])
    assert cli.main(["convert", str(q), "--format", "lines", "--out", str(tmp_path / "o")]) == 2
    assert "--contexts" in capsys.readouterr().err
    assert cli.main(["convert", str(q), "--format", "lines", "--contexts", str(c), "--out", str(tmp_path / "o")]) == 2
    assert "3 questions but" in capsys.readouterr().err


def test_a_paraphrased_answer_keeps_its_question_when_bm25_vouches_for_the_given_context(tmp_path):
    # The real thquad case: the answer quotes its paragraph in other words, so no span aligns, yet the question is
    # asked of that paragraph. BM25 over every context ranks it first by a clear margin: kept, and recorded.
    rows = [{"id": "p1", "question": "Bahçesaray Antlaşması'na göre Osmanlı ve Rusya hangi sınırı kabul etti?",
             "context": "Bahçesaray Antlaşması 1681'de imzalandı. Antlaşmanın ana hükümlerine göre Osmanlı ve Rusya "
                        "Dinyeper nehrini sınır kabul etti.",
             "answer": "Dinyeper ırmağını sınır saydılar"},
            {"id": "p2", "question": "Meclis ne zaman açıldı?", "context": CTX_IST, "answer": "23 Nisan 1920"},
            {**ROWS[2], "id": "q3"}, {**ROWS[4], "id": "q5"}, {"id": "q6", "question": "İzmir kışı?",
                                                               "context": CTX_IZMIR, "answer": "ılık"}]
    path = _jsonl(tmp_path, rows)
    conv = convert.convert_file(path, "jsonl", repair.Options(ranker=BM25()))
    assert "p1" in conv.queries
    p1 = next(r for r in conv.repairs if r["id"] == "p1")
    assert p1["tier"] == "context" and p1["score"] >= repair.ORPHAN_CONFIDENCE
    # p2's given context is not where its words are (BM25 ranks the TBMM paragraph first): still rejected.
    reasons = {r["id"]: r["reason"] for r in conv.rejects if r.get("dropped") == "question"}
    assert reasons == {"p2": "answer_not_in_context"}
    assert "p1" not in convert.convert_file(path, "jsonl").queries  # --no-repair: as strict as before
