"""The topic-disjoint split: the held-out era's task, the pooled corpus, training that never reads the era, the
leakage check that proves it, and the registry's unseen-topics verdicts that keep a model out of recommendations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.data import tasks
from bench.errors import BenchError
from bench.models import registry
from bench.reports import leaderboard, standings
from bench.reports.cells import UNSEEN_MARK, UNSEEN_NOTE
from bench.measure.results import ResultRecord
from bench.data import split
from bench.train import leakage
from tests.conftest import bm25_and_tiny

EARLY = ["Kanuni Sultan Süleyman Budin kalesini kuşattı ve kale uzun süre direndi.",
         "Fatih Sultan Mehmet İstanbul'u fethetti ve şehri başkent yaptı.",
         "Yavuz Sultan Selim Mısır seferinden hilafeti getirdi.",
         "Piri Reis Kitab-ı Bahriye adlı denizcilik eserini yazdı.",
         "Mimar Sinan Süleymaniye Camii'ni inşa etti ve kalfalık eserim dedi.",
         "Barbaros Hayreddin Paşa Preveze'de Haçlı donanmasını yendi."]
LATE = ["Tanzimat Fermanı Gülhane parkında okundu ve can güvenliği tanındı.",
        "Birinci Meşrutiyet ile Meclis-i Mebusan açıldı.",
        "Kırım Savaşı'nda Osmanlı İngiltere ve Fransa ile birlikte Rusya'ya karşı savaştı.",
        "Balkan Savaşları'nda Edirne kaybedildi ve sonra geri alındı.",
        "Çanakkale cephesinde itilaf donanması boğazı geçemedi.",
        "Mondros Ateşkesi Limni adasında Agamemnon zırhlısında imzalandı."]


def _squad(path: Path, contexts: list[str]) -> Path:
    paras = [{"context": c, "qas": [{"id": f"{path.stem}{i}q{j}", "question": f"{c.split()[j]} {c.split()[j + 2]} ne oldu? ({i}.{j})",
                                     "answers": []} for j in range(2)]} for i, c in enumerate(contexts)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"data": [{"title": "Tarih", "paragraphs": paras}]}, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def eras(tmp_path) -> Path:
    """A thquad-like folder: one early-era file and one file of the held-out era."""
    folder = tmp_path / "thquad"
    _squad(folder / "enelpi2020_1451-1579_train_data.json", EARLY)
    _squad(folder / f"enelpi2020_{split.ERA}_train_data.json", LATE)
    return folder


def _task(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nformat: squad\n{body}", encoding="utf-8")
    return path


def test_the_era_part_is_the_era_file_and_training_files_leave_it_out(eras):
    era_pairs, era_contexts = split.pairs(eras, "era")
    assert {c for _, c in era_contexts} == set(LATE) and {p.context for p in era_pairs} == set(LATE)
    files = split.squad_files(eras)
    assert [f.name for f in split.training_files(files, "era")] == ["enelpi2020_1451-1579_train_data.json"]
    assert split.training_files(files, None) == files
    with pytest.raises(BenchError, match="train.hold_out: 'topic'"):
        split.training_files(files, "topic")
    lone = eras.parent / "lone"
    _squad(lone / "a.json", EARLY)
    with pytest.raises(BenchError, match="no file of the held-out era"):
        split.pairs(lone, "era")


def test_a_pooled_task_searches_every_paragraph_and_asks_only_its_part(eras, tmp_path):
    spec = tasks.load_spec(_task(tmp_path, "thquad_1792_1922", f"path: {eras}\nparagraphs: era\npool: all\n"))
    data = tasks.load(spec)
    assert {d["text"] for d in data.corpus.values()} == set(EARLY) | set(LATE)
    relevant = {data.corpus[d]["text"] for rel in data.qrels.values() for d in rel}
    assert relevant == set(LATE) and len(data.queries) == 2 * len(LATE)
    # Without the pool the era's own paragraphs alone: the easier task the pool replaces.
    alone = tasks.load(tasks.load_spec(_task(tmp_path, "alone", f"path: {eras}\nparagraphs: era\n")))
    assert {d["text"] for d in alone.corpus.values()} == set(LATE)
    # A pooled side of the paragraph split: its own relevant paragraphs among all of them.
    train = tasks.load(tasks.load_spec(_task(tmp_path, "train", f"path: {eras}\nparagraphs: train\npool: all\n")))
    assert len(train.corpus) == len(EARLY) + len(LATE)
    relevant = {d for rel in train.qrels.values() for d in rel}
    assert relevant and all(split.part_of(train.corpus[d]["text"]) == "train" for d in relevant)


@pytest.mark.parametrize("body,expect", [
    ("path: x\npool: all\n", "field 'pool' must be 'all' and needs a 'paragraphs' field"),
    ("path: x\nparagraphs: era\npool: some\n", "field 'pool' must be 'all'"),
    ("path: x\nparagraphs: topic\n", "field 'paragraphs' must be 'train', 'dev' or 'era'"),
])
def test_bad_pool_or_part_is_one_line(tmp_path, body, expect):
    with pytest.raises(BenchError, match=expect):
        tasks.load_spec(_task(tmp_path, "t", body))


def test_repo_tasks_pool_the_dev_part_and_hold_out_the_era():
    dev = tasks.load_spec(Path(__file__).resolve().parent.parent / "tasks" / "thquad_dev.yaml")
    era = tasks.load_spec(Path(__file__).resolve().parent.parent / "tasks" / "thquad_1792_1922.yaml")
    assert (dev.paragraphs, dev.pool) == ("dev", "all") and (era.paragraphs, era.pool) == ("era", "all")
    assert era.name in leakage.EVAL_TASKS and leakage.held_out_tasks([dev, era]) == {era.name}


def test_leakage_counts_relevant_paragraphs_of_a_pooled_task_and_is_strict_for_held_out_builds(eras, tmp_path):
    spec = tasks.load_spec(_task(tmp_path, "thquad_1792_1922", f"path: {eras}\nparagraphs: era\npool: all\n"))
    # An early paragraph is a distractor here, not an evaluation paragraph.
    assert leakage.check([], EARLY, [spec]) == {"thquad_1792_1922": {"questions": 0, "paragraphs": 0}}
    evals = leakage.load_eval([spec])
    with pytest.raises(BenchError, match="1 training paragraph.*held-out task 'thquad_1792_1922'"):
        leakage.check([], [LATE[0]], evals=evals, strict={"thquad_1792_1922"})
    question = split.pairs(eras, "era")[0][0].question
    with pytest.raises(BenchError, match="1 training question"):
        leakage.check([question], [], evals=evals, strict={"thquad_1792_1922"})
    # An entry that reads every era on purpose: counted and marked, never fatal, none of its questions dropped.
    counts = leakage.check([question], LATE, evals=evals, trained_on={"thquad_1792_1922"})
    assert counts["thquad_1792_1922"] == {"questions": 1, "paragraphs": len(LATE), "trained_on": True}
    dropped_for, trained_on, strict = leakage.for_build(evals, None, {"thquad_1792_1922"})
    assert dropped_for == {} and trained_on == {"thquad_1792_1922"} and strict == set()
    assert leakage.exclude_questions([question], dropped_for)[0] == [True]
    dropped_for, trained_on, strict = leakage.for_build(evals, "era", {"thquad_1792_1922"})
    assert dropped_for == evals and trained_on == set() and strict == {"thquad_1792_1922"}


def _era_registry(tmp_path, tiny_model_dir, monkeypatch, eras: Path, copy_into_early: bool = False) -> Path:
    evals = tmp_path / "evaltasks"
    evals.mkdir()
    _task(evals, "thquad_1792_1922", f"path: {eras}\nparagraphs: era\npool: all\n")
    monkeypatch.setenv("BENCH_TASKS_DIR", str(evals))
    if copy_into_early:  # a held-out paragraph copied into a file the build reads
        _squad(eras / "enelpi2020_1451-1579_train_data.json", EARLY + [LATE[0]])
    models = tmp_path / "models.yaml"
    params = "{max_seq_length: 48, batch_size: 4, lr: 0.002, max_steps: 3, epochs: 5, exclude_eval_questions: true}"
    models.write_text("models:\n" + bm25_and_tiny(tiny_model_dir) + f"""  - name: tiny contrastive, era held out
    kind: bi-encoder
    loader: sentence-transformers
    variants: [torch-fp32]
    train: {{recipe: contrastive, base: tiny, data: ["{eras}/*.json"], hold_out: era, params: {params}}}
  - name: tiny contrastive, every era
    kind: bi-encoder
    loader: sentence-transformers
    variants: [torch-fp32]
    train: {{recipe: contrastive, base: tiny, data: ["{eras}/*.json"], params: {params}}}
    unseen_topics: {{verdict: lost, by: "tiny contrastive, era held out"}}
""", encoding="utf-8")
    return models


def _record(models: Path, name: str) -> dict:
    e = {e.name: e for e in registry.load_registry(models)}[name]
    return json.loads((registry.trained_dir(e) / "training.json").read_text(encoding="utf-8"))


def test_a_held_out_build_never_reads_the_era_and_an_every_era_build_keeps_its_questions(
        tmp_path, tiny_model_dir, monkeypatch, eras):
    models = _era_registry(tmp_path, tiny_model_dir, monkeypatch, eras)
    assert main(["train", "tiny contrastive, era held out", "tiny contrastive, every era", "--models", str(models)]) == 0
    held = _record(models, "tiny contrastive, era held out")
    assert held["hold_out"] == "era" and all(split.ERA not in f for f in held["data"])
    assert held["leakage"]["thquad_1792_1922"] == {"questions": 0, "paragraphs": 0}
    every = _record(models, "tiny contrastive, every era")
    assert "hold_out" not in every and any(split.ERA in f for f in every["data"])
    assert every["leakage"]["thquad_1792_1922"]["trained_on"] is True
    assert every["leakage"]["thquad_1792_1922"]["questions"] > 0
    assert "thquad_1792_1922" not in (every.get("excluded_eval_questions") or {})


def test_a_held_out_paragraph_in_another_file_fails_the_held_out_build(tmp_path, tiny_model_dir, monkeypatch, eras,
                                                                        capsys):
    models = _era_registry(tmp_path, tiny_model_dir, monkeypatch, eras, copy_into_early=True)
    assert main(["train", "tiny contrastive, era held out", "--models", str(models)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "held-out task 'thquad_1792_1922'" in err and len(err.splitlines()) == 1


def test_the_hold_out_setting_is_part_of_what_a_build_must_match(tmp_path, tiny_model_dir, monkeypatch, eras):
    models = _era_registry(tmp_path, tiny_model_dir, monkeypatch, eras)
    e = {e.name: e for e in registry.load_registry(models)}["tiny contrastive, era held out"]
    assert registry.run_mismatch(e, {"recipe": "contrastive", "base": "tiny", "seed": 0, "params": {
        **e.train["params"]}}, check_base=False) == "hold_out: built None, registry 'era'"


# --- unseen-topics verdicts: declared in the registry, never recommended -----------------------------------------

def _registry(tmp_path, tiny_model_dir, extra: str) -> Path:
    models = tmp_path / "models.yaml"
    models.write_text("models:\n" + bm25_and_tiny(tiny_model_dir) + extra, encoding="utf-8")
    return models


TRAINED = """  - name: {name}
    kind: bi-encoder
    loader: sentence-transformers
    train: {{recipe: contrastive, base: tiny, data: [x.json]{hold}}}
{unseen}"""


def test_the_registry_names_the_entries_never_to_recommend(tmp_path, tiny_model_dir):
    extra = (TRAINED.format(name="held", hold=", hold_out: era", unseen="    unseen_topics: {verdict: lost}\n")
             + TRAINED.format(name="shipped", hold="", unseen="    unseen_topics: {verdict: lost, by: held}\n")
             + TRAINED.format(name="kept one", hold="", unseen="    unseen_topics: {verdict: kept, by: held}\n")
             + TRAINED.format(name="unjudged", hold="", unseen="    unseen_topics: {verdict: not judged}\n")
             + """  - name: bm25 + shipped
    kind: pipeline
    loader: hybrid
    stages: [bm25, "shipped [torch-fp32]"]
""")
    lost = registry.lost_on_unseen_topics(registry.load_registry(_registry(tmp_path, tiny_model_dir, extra)))
    assert lost == {"held": "lost", "shipped": "lost", "unjudged": "not judged", "bm25 + shipped": "lost"}


def test_a_shipped_trained_entry_with_no_verdict_counts_as_not_judged(tmp_path, tiny_model_dir):
    """A verdict left out must not let a trained entry into the recommendations unjudged."""
    extra = (TRAINED.format(name="held", hold=", hold_out: era", unseen="")
             + TRAINED.format(name="silent", hold="", unseen=""))
    lost = registry.lost_on_unseen_topics(registry.load_registry(_registry(tmp_path, tiny_model_dir, extra)))
    assert lost == {"silent": "not judged"}


@pytest.mark.parametrize("unseen,expect", [
    ("{verdict: fine}", "unseen_topics.verdict' must be one of kept, lost, not judged"),
    ("{verdict: lost, why: x}", "unknown field 'unseen_topics.why'"),
    ("{verdict: kept}", "unseen_topics.by' must name an entry built with train.hold_out"),
    ("{verdict: kept, by: tiny}", "unseen_topics.by' must name an entry built with train.hold_out"),
])
def test_bad_unseen_topics_field_is_one_line(tmp_path, tiny_model_dir, unseen, expect):
    extra = TRAINED.format(name="shipped", hold="", unseen=f"    unseen_topics: {unseen}\n")
    with pytest.raises(BenchError, match=expect.replace(".", r"\.")):
        registry.load_registry(_registry(tmp_path, tiny_model_dir, extra))


def test_hold_out_must_be_a_known_split(tmp_path, tiny_model_dir):
    with pytest.raises(BenchError, match="field 'train.hold_out' is 'topics'"):
        registry.load_registry(_registry(tmp_path, tiny_model_dir, TRAINED.format(
            name="x", hold=", hold_out: topics", unseen="")))


def _row(model: str, ndcg: float, p50: float, per_query: dict, stages=None) -> ResultRecord:
    return ResultRecord(task="t", model=model, variant="v", kind="bi-encoder", status="ok", ndcg_at_10=ndcg,
                        latency_p50_ms=p50, per_query_ndcg=per_query, stages=stages)


def test_the_standing_never_picks_a_row_that_lost_on_unseen_topics():
    n = 60
    strong = {f"q{i}": 1.0 for i in range(n)}
    weak = {f"q{i}": (1.0 if i % 2 else 0.0) for i in range(n)}
    rows = [_row("trained", 1.0, 1.0, strong), _row("bm25", 0.5, 0.5, weak),
            _row("hybrid + trained", 1.0, 5.0, strong, stages=["bm25 [v]", "trained [v]"]),
            _row("base", 0.5, 8.0, weak)]
    free = standings.standing(rows)
    assert free.best.model == "trained" and free.picks[2].model == "trained"
    st = standings.standing(rows, lost={"trained": "lost"})
    picked = {r.model for r in st.picks.values() if r is not None} | {st.best.model}
    assert "trained" not in picked and "hybrid + trained" not in picked
    assert st.best.model in ("bm25", "base") and st.picks[2].model == "bm25"
    assert [r.model for r in standings.left_out(rows, st.best, {"trained": "lost"})] == ["trained", "hybrid + trained"]
    md = leaderboard.task_markdown("t", rows, lost={"trained": "lost"})
    assert f"| trained {UNSEEN_MARK} " in md and f"| hybrid + trained {UNSEEN_MARK} " in md
    assert f"| bm25 {UNSEEN_MARK}" not in md and UNSEEN_NOTE in md


def test_the_training_report_judges_held_out_entries_against_their_base_and_flags_a_wrong_declaration(
        tmp_path, tiny_model_dir):
    from bench.reports import unseen_topics

    n = 40
    base = {f"q{i}": 1.0 for i in range(n)}
    worse = {f"q{i}": (0.0 if i < 8 else 1.0) for i in range(n)}  # 0.2 below
    same = dict(base)
    rows = [ResultRecord(task=unseen_topics.DISJOINT_TASK, model=m, variant="torch-fp32", kind="bi-encoder", status="ok",
                         ndcg_at_10=sum(q.values()) / n, per_query_ndcg=q)
            for m, q in (("tiny", base), ("held", worse), ("held too", same))]
    runs = {"held": {"recipe": "contrastive", "base": "tiny", "hold_out": "era"},
            "held too": {"recipe": "trim-vocab", "base": "tiny", "hold_out": "era"}}
    assert [unseen_topics.unseen_verdict(r, rows[0], "contrastive") for r in rows[1:]] == ["lost", "kept"]
    # 0.8 of the teacher: within a pruned student's 0.02? no; a static model's 85%? no. 0.9 would pass the static one.
    assert unseen_topics.unseen_verdict(rows[1], rows[0], "prune") == "lost"
    assert unseen_topics.unseen_verdict(rows[1], rows[0], "static-distill") == "lost"
    nine = ResultRecord(task=unseen_topics.DISJOINT_TASK, model="s", variant="numpy-fp32", kind="bi-encoder", status="ok",
                        ndcg_at_10=0.9, per_query_ndcg={f"q{i}": (0.0 if i < 4 else 1.0) for i in range(n)})
    assert unseen_topics.unseen_verdict(nine, rows[0], "static-distill") == "kept"
    assert unseen_topics.unseen_verdict(nine, rows[0], "contrastive") == "lost"
    extra = (TRAINED.format(name="held", hold=", hold_out: era", unseen="")
             + TRAINED.format(name="held too", hold=", hold_out: era", unseen="")
             + TRAINED.format(name="shipped", hold="", unseen="    unseen_topics: {verdict: kept, by: held}\n"))
    entries = registry.load_registry(_registry(tmp_path, tiny_model_dir, extra))
    md = "\n".join(unseen_topics.section(rows, runs, entries))
    assert "| held " in md and "| lost " in md and "| held too " in md and "| kept " in md
    assert "**The declared verdicts disagree with these rows:** shipped (declared kept, its held-out entry held: lost)" in md


def test_the_disjoint_task_chooses_the_best_setting_of_a_recipe():
    from bench.reports import unseen_topics

    n = 20
    base = ResultRecord(task=unseen_topics.DISJOINT_TASK, model="static", variant="numpy-fp32", kind="bi-encoder",
                        status="ok", ndcg_at_10=0.5, per_query_ndcg={f"q{i}": 0.5 for i in range(n)})
    tried = [ResultRecord(task=unseen_topics.DISJOINT_TASK, model=m, variant="numpy-fp32", kind="bi-encoder", status="ok",
                          ndcg_at_10=v, per_query_ndcg={f"q{i}": v for i in range(n)})
             for m, v in (("pairs 5", 0.6), ("pairs 0", 0.7))]
    lines = unseen_topics.chosen([(r, base, "static-tune") for r in tried])
    assert any("the disjoint task chooses pairs 0 [numpy-fp32] (0.700)" in line and "pairs 5 [numpy-fp32] +0.100*"
               in line for line in lines)
    assert unseen_topics.chosen([(tried[0], base, "static-tune")]) == []
