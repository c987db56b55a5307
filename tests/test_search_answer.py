"""`bench search query` abstains below the calibrated threshold of the index's model, and prints JSON for scripts."""

import json

import pytest

from bench import answers
from bench.data.chunking import Chunk
from bench.measure import results
from bench.measure.results import ResultRecord
from test_search import docs, search  # noqa: F401 (fixture)


def _record(task, model, variant, threshold, auroc=0.9):
    return ResultRecord(task=task, model=model, variant=variant, status="ok", ndcg_at_10=0.5,
                        abstention={"auroc": auroc, "threshold": threshold, "abstained_unanswerable": 0.8,
                                    "answered_answerable": 0.9, "n_answerable": 10, "n_unanswerable": 10,
                                    "n_dev": 10, "n_test": 10, "seed": 0, "target_answered": 0.9})


def test_threshold_comes_from_the_records_of_the_index_model(tmp_path):
    path = tmp_path / "results.json"
    results.write([_record("tr_mini_wiki", "m", "v", 0.5), _record("drug_leaflets", "m", "v", 0.8),
                   _record("drug_leaflets", "m", "other", 0.1), ResultRecord("xquad_tr", "m", "v", "ok", ndcg_at_10=1)],
                  path)
    cal = answers.calibration(path, "m", "v")
    assert cal.threshold == 0.8 and cal.task == "drug_leaflets" and "AUROC 0.900" in cal.text
    assert answers.calibration(path, "m", "v", task="tr_mini_wiki").threshold == 0.5
    none = answers.calibration(path, "n", "v")
    assert none.threshold is None and "no calibrated threshold" in none.text
    missing = answers.calibration(tmp_path / "absent.json", "m", "v")
    assert missing.threshold is None and "absent.json" in missing.text


LEAF = Chunk("ilac.json#parol-nedir-0", "Parol — nedir", "PAROL ağrı kesicidir.", "ilac.json", "section nedir",
             meta={"ilacAdi": "parol", "section": "nedir"})
TXT = Chunk("notlar.txt", "notlar", "Van Gölü büyüktür.", "notlar.txt", "chars 0-18")


@pytest.mark.parametrize("threshold, abstain", [(0.7, True), (0.5, False), (None, False)])
def test_abstain_only_when_the_best_score_is_below_a_known_threshold(threshold, abstain):
    hits = [(0.6, LEAF), (0.4, TXT)]
    payload = answers.payload(hits, answers.Calibration(threshold, "drug_leaflets", "why"))
    assert payload["abstain"] is abstain and payload["threshold"] == threshold
    assert payload["results"][0] == {"file": "ilac.json", "position": "section nedir", "score": 0.6,
                                     "text": "PAROL ağrı kesicidir.", "medicine": "Parol", "section": "nedir"}
    assert payload["results"][1] == {"file": "notlar.txt", "position": "chars 0-18", "score": 0.4,
                                     "text": "Van Gölü büyüktür."}


def _index(docs, tiny_registry, tmp_path):
    index = tmp_path / "idx"
    assert search("index", docs, "--models", tiny_registry, "--model", "tiny", "--index", index) == 0
    return index


def test_query_json_abstains_and_still_lists_the_nearest(docs, tiny_registry, tmp_path, capsys):
    index = _index(docs, tiny_registry, tmp_path)
    res = tmp_path / "results.json"
    results.write([_record("drug_leaflets", "tiny", "torch-fp32", 2.0)], res)  # above any cosine: always abstains
    capsys.readouterr()
    assert search("query", "Lustral'i sabah mı almalıyım?", "--index", index, "--models", tiny_registry,
                  "--results", res, "-k", "3", "--json") == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["abstain"] is True and payload["threshold"] == 2.0 and len(payload["results"]) == 3
    assert all({"file", "position", "score", "text"} <= set(r) for r in payload["results"])
    assert search("query", "Lustral'i sabah mı almalıyım?", "--index", index, "--models", tiny_registry,
                  "--results", res, "-k", "2") == 0
    out = capsys.readouterr().out
    assert "No passage answers this question confidently" in out and out.count("    ") >= 2  # passages still shown
    assert out.index("No passage answers") < out.index(" 1. ")


def test_query_above_the_threshold_answers_and_without_one_says_so(docs, tiny_registry, tmp_path, capsys):
    index = _index(docs, tiny_registry, tmp_path)
    res = tmp_path / "results.json"
    results.write([_record("drug_leaflets", "tiny", "torch-fp32", -2.0)], res)
    capsys.readouterr()
    search("query", "Parol aç karnına alınır mı?", "--index", index, "--models", tiny_registry, "--results", res,
           "-k", "20", "--json")
    payload = json.loads(capsys.readouterr().out)
    assert payload["abstain"] is False
    assert any(r.get("medicine") == "Parol" and r.get("section") for r in payload["results"])
    search("query", "Parol aç karnına alınır mı?", "--index", index, "--models", tiny_registry,
           "--results", tmp_path / "none.json")
    assert "no calibrated threshold" in capsys.readouterr().out
