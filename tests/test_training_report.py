"""The training ablation report (bench/reports/training.py), from synthetic records and training.json dicts only:
no model is trained or loaded here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.models import registry
from bench.measure import results
from bench.reports import training
from bench.train import runs as run_store
from bench.measure.results import ResultRecord

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models.yaml"
N = 200  # questions
TASK = "xquad_tr"
BM25, BASE, HYBRID = "BM25 (Turkish Snowball)", "multilingual-e5-small (Q4-dequantized)", "Hybrid RRF (BM25 + e5-small)"
MLM, CON, MLMCON = "e5-small MLM-adapted", "e5-small contrastive", "e5-small MLM+contrastive"
CE = "e5-small cross-encoder (trained)"
CE_BM25, CE_HYBRID = "BM25 → trained cross-encoder (top 20)", "Hybrid RRF → trained cross-encoder (top 20)"


def ones(k, ids=None):
    """Per-question nDCG@10 that is 1 on the first k questions and 0 on the rest: nested rows differ only on the
    questions between them, so k = 160 against k = 120 is clearly significant and 121 against 120 is not."""
    ids = ids if ids is not None else [f"q{i:03d}" for i in range(N)]
    return {q: 1.0 if i < k else 0.0 for i, q in enumerate(ids)}


def rec(model, variant, per_query, task=TASK, kind="bi-encoder", stages=None, status="ok", reason=""):
    if status != "ok":
        return ResultRecord(task=task, model=model, variant=variant, status=status, reason=reason, fix="do x")
    ndcg = sum(per_query.values()) / len(per_query)
    return ResultRecord(task=task, model=model, variant=variant, status="ok", kind=kind, ndcg_at_10=ndcg,
                        mrr_at_10=ndcg, recall_at_1=ndcg, recall_at_10=ndcg, n_queries=len(per_query), n_docs=50,
                        per_query_ndcg=per_query, stages=stages, threads=2, cpu="test cpu", simd="avx2",
                        peak_gflops=100.0, libs="torch 2")


def rows(task=TASK):
    return [
        rec(HYBRID, "bm25s+onnx-int8", ones(130), task, kind="pipeline",
            stages=[f"{BM25} [bm25s]", f"{BASE} [onnx-int8]"]),
        rec(CON, "onnx-int8", ones(158), task),
        rec(MLMCON, "torch-fp32", ones(161), task),
        rec(BASE, "onnx-int8", ones(118), task),
        rec(CE_HYBRID, "bm25s+onnx-int8+torch-fp32", ones(131), task, kind="pipeline",
            stages=[f"{HYBRID} [bm25s+onnx-int8]", f"{CE} [torch-fp32]"]),
        rec(MLM, "torch-fp32", ones(119), task),
        rec(CON, "torch-fp32", ones(160), task),
        rec(BASE, "torch-fp32", ones(120), task),
        rec(MLMCON, "onnx-fp32", ones(150), task),  # the base has no onnx-fp32 row: compared with its torch-fp32
        rec(CE_BM25, "bm25s+torch-fp32", ones(60), task, kind="pipeline",
            stages=[f"{BM25} [bm25s]", f"{CE} [torch-fp32]"]),
        rec(BM25, "bm25s", ones(100), task, kind="lexical"),
        rec("some other model", "torch-fp32", ones(199), task),  # not part of the ablation
    ]


def run_of(name, recipe, base, steps, wall, **extra):
    return {"name": name, "recipe": recipe, "base": base, "seed": 13, "steps": steps, "wall_seconds": wall,
            "losses": [round(3.0 - 0.01 * i, 3) for i in range(steps)], "final_loss": 3.0 - 0.01 * (steps - 1),
            "params": {"max_seq_length": 128, "batch_size": 16, "lr": 2e-05, "max_pairs": 1200, "max_steps": None,
                       "freeze_embeddings": True},
            "data": {"../shared/data/thquad_train/a.json": "ab" * 32},
            "leakage": {"xquad_tr": {"questions": 0, "paragraphs": 0}, "drug_leaflets": {"questions": 0, "paragraphs": 0}},
            "libraries": {"torch": "2.13.0"}, "code": "abc123", **extra}


def runs(leaflet_paragraphs=412):
    mlm = run_of(MLM, "mlm", BASE, 80, 600.0, head_steps=30, head_losses=[9.0, 8.0, 7.5],
                 heldout_mlm_loss_before=2.5, heldout_mlm_loss_after=2.1, heldout_perplexity_before=12.18,
                 heldout_perplexity_after=8.17, heldout_texts=40)
    mlm["leakage"]["drug_leaflets"]["paragraphs"] = leaflet_paragraphs
    return {MLM: mlm,
            CON: run_of(CON, "contrastive", BASE, 75, 900.0, examples=1200, excluded_eval_questions={"thquad_dev": 3}),
            MLMCON: run_of(MLMCON, "contrastive", MLM, 75, 960.0, examples=1200, excluded_eval_questions={}),
            CE: run_of(CE, "cross-encoder", BASE, 125, 1000.0, examples=2000)}


def entries():
    return registry.load_registry(MODELS)


def section(md, task=TASK):
    return md.split(f"## Ablation: `{task}`")[1].split("\n## ")[0]


def table_rows(text):
    """(model, variant) -> cells of each table row in a Markdown section."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) > 2 and not set(cells[0]) <= set("-:") and cells[0] != "Model":
            out[(cells[0], cells[1])] = cells
    return out


def test_one_table_per_task_with_rows_in_ablation_order():
    md = training.training_markdown(rows() + rows("tr_mini_wiki"), runs(), entries())
    assert md.index("## Ablation: `tr_mini_wiki`") < md.index("## Ablation: `xquad_tr`")
    assert "## Ablation: `drug_leaflets`" not in md  # no records for it: no table
    order = list(table_rows(section(md)))
    assert order == [(BM25, "bm25s"), (BASE, "torch-fp32"), (BASE, "onnx-int8"), (MLM, "torch-fp32"),
                     (CON, "torch-fp32"), (CON, "onnx-int8"), (MLMCON, "torch-fp32"), (MLMCON, "onnx-fp32"),
                     (HYBRID, "bm25s+onnx-int8"), (CE_BM25, "bm25s+torch-fp32"),
                     (CE_HYBRID, "bm25s+onnx-int8+torch-fp32")]
    header = next(line for line in section(md).splitlines() if line.startswith("| Model"))
    assert [c.strip() for c in header.strip("|").split("|")] == list(training.ABLATION_COLUMNS)


def test_deltas_and_marks_come_from_the_paired_test():
    cells = table_rows(section(training.training_markdown(rows(), runs(), entries())))
    col = {name: i for i, name in enumerate(training.ABLATION_COLUMNS)}
    base, bm25 = col["Δ vs base"], col["Δ vs BM25"]
    assert cells[(CON, "torch-fp32")][base] == "+0.200*"  # 40 of 200 questions apart
    assert cells[(CON, "onnx-int8")][base] == "+0.200*"  # against the base's own onnx-int8 row (118), not fp32
    assert cells[(MLMCON, "onnx-fp32")][base] == "+0.150*"  # no base onnx-fp32: against the base's torch-fp32
    assert cells[(MLM, "torch-fp32")][base] == "-0.005 (n.s.)"  # one question apart
    assert cells[(BASE, "torch-fp32")][base] == "base" and cells[(BM25, "bm25s")][bm25] == "baseline"
    assert cells[(CE_BM25, "bm25s+torch-fp32")][bm25] == "-0.200*"
    assert cells[(CON, "torch-fp32")][bm25] == "+0.300*"


def test_a_mean_without_a_question_by_question_difference_is_not_significant():
    odd = rows()
    contrastive = next(r for r in odd if r.model == CON and r.variant == "torch-fp32")
    contrastive.per_query_ndcg = ones(120)  # the same questions right as the base ...
    contrastive.ndcg_at_10 = 0.9  # ... whatever the stored mean says
    cells = table_rows(section(training.training_markdown(odd, runs(), entries())))
    assert cells[(CON, "torch-fp32")][training.ABLATION_COLUMNS.index("Δ vs base")] == "+0.000 (n.s.)"


def test_verdict_lines_say_helped_did_not_help_or_hurt():
    text = section(training.training_markdown(rows(), runs(), entries()))
    lines = [line for line in text.splitlines() if line.startswith("- **")]
    verdict = {line.split("**")[1] + line.split("**")[2].split(":")[0]: line for line in lines}
    assert "helped (+0.200, significant" in verdict["base → contrastive [torch-fp32]"]
    assert "helped (+0.200, significant" in verdict["base → contrastive [onnx-int8]"]
    assert "helped (+0.205, significant" in verdict["base → MLM+contrastive [torch-fp32]"]
    assert "[onnx-fp32 against torch-fp32]" in " ".join(verdict)  # the base lacks that variant
    assert "did not help significantly (+0.005, n.s." in verdict["contrastive → MLM+contrastive [torch-fp32]"]
    assert "did not help significantly (−0.005, n.s." in verdict["base → MLM-adapted [torch-fp32]"]
    assert "hurt (−0.200, significant" in verdict[f"{CE_BM25} [bm25s+torch-fp32]"]
    assert "against its first stage BM25 (Turkish Snowball) [bm25s]" in verdict[f"{CE_BM25} [bm25s+torch-fp32]"]
    assert "did not help significantly (+0.005, n.s." in verdict[f"{CE_HYBRID} [bm25s+onnx-int8+torch-fp32]"]


def test_a_new_reranking_pipeline_is_found_from_its_records_alone():
    new_ce, pipeline = "my cross-encoder", "BM25 → my cross-encoder (top 5)"
    trained = {**runs(), new_ce: run_of(new_ce, "cross-encoder", BASE, 40, 300.0, examples=500)}
    extra = [rec(pipeline, "bm25s+torch-fp32", ones(140), kind="pipeline",
                 stages=[f"{BM25} [bm25s]", f"{new_ce} [torch-fp32]"]),
             rec("BM25 → some untrained re-ranker", "bm25s+torch-fp32", ones(150), kind="pipeline",
                 stages=[f"{BM25} [bm25s]", "some untrained re-ranker [torch-fp32]"])]
    text = section(training.training_markdown(rows() + extra, trained, entries()))
    cells = table_rows(text)
    assert list(cells)[-1] == (pipeline, "bm25s+torch-fp32")  # after the registry's pipelines
    assert cells[(pipeline, "bm25s+torch-fp32")][training.ABLATION_COLUMNS.index("Training steps")] == "40"
    assert f"- **{pipeline}** [bm25s+torch-fp32]: helped (+0.200, significant" in text
    assert "some untrained re-ranker" not in text


def test_training_columns_add_up_the_mlm_stage_for_mlm_plus_contrastive():
    cells = table_rows(section(training.training_markdown(rows(), runs(), entries())))
    col = training.ABLATION_COLUMNS
    wall, steps = col.index("Training wall time"), col.index("Training steps")
    assert cells[(MLMCON, "torch-fp32")][wall] == "1560 s (26.0 min; 600 + 960)"
    assert cells[(MLMCON, "torch-fp32")][steps] == "155 (80 + 75)"
    assert cells[(CON, "torch-fp32")][wall] == "900 s (15.0 min)" and cells[(CON, "torch-fp32")][steps] == "75"
    assert cells[(CE_BM25, "bm25s+torch-fp32")][steps] == "125"  # the trained stage of the pipeline
    assert cells[(BM25, "bm25s")][wall] == "—"
    without_mlm = {k: v for k, v in runs().items() if k != MLM}  # its trained base has no record: no silent sum
    cells = table_rows(section(training.training_markdown(rows(), without_mlm, entries())))
    assert cells[(MLMCON, "torch-fp32")][wall] == "960 s (16.0 min) + base n/a"
    assert cells[(MLM, "torch-fp32")][steps] == "n/a"


def test_a_sampled_row_shows_n_of_n_and_is_tested_on_the_common_questions():
    sample = [f"q{i:03d}" for i in range(0, N, 4)]  # 50 of the 200 questions
    recs = rows()
    mlmcon = next(r for r in recs if r.model == MLMCON and r.variant == "torch-fp32")
    recs[recs.index(mlmcon)] = sampled = rec(MLMCON, "torch-fp32", {q: 1.0 for q in sample})
    sampled.sampled_from = N  # getattr in the module: works before ResultRecord has the field
    md = training.training_markdown(recs, runs(), entries())
    cells = table_rows(section(md))
    col = training.ABLATION_COLUMNS
    assert cells[(MLMCON, "torch-fp32")][col.index("Questions")] == "50 of 200"
    assert cells[(CON, "torch-fp32")][col.index("Questions")] == "200"
    # base answers 30 of those 50 (q000..q116 every 4th): +0.400 over the 50 common questions
    assert cells[(MLMCON, "torch-fp32")][col.index("Δ vs base")] == "+0.400*"
    assert "50 questions" in next(line for line in section(md).splitlines()
                                  if line.startswith("- **base → MLM+contrastive** [torch-fp32]"))


def test_skipped_and_missing_models_do_not_crash_and_are_listed():
    recs = [r for r in rows() if r.model in (BM25, BASE)] + [
        rec(CON, "torch-fp32", None, status="skipped", reason="trained entry not built yet"),
        rec(CE_BM25, "bm25s+torch-fp32", None, status="failed", reason="RuntimeError: out of memory"),
        rec("unrelated", "torch-fp32", None, status="skipped", reason="no network")]
    md = training.training_markdown(recs, {}, entries())
    text = section(md)
    assert list(table_rows(text.split("Skipped and failed")[0])) == [(BM25, "bm25s"), (BASE, "torch-fp32"),
                                                                     (BASE, "onnx-int8")]
    skipped = text.split("Skipped and failed")[1]
    assert "trained entry not built yet" in skipped and "out of memory" in skipped and "unrelated" not in skipped
    assert "- **" not in text  # nothing trained to judge
    assert "no training record" in md  # the registry's trained entries without a training.json


def test_recipe_and_mlm_tables():
    md = training.training_markdown(rows(), runs(), entries())
    recipes = table_rows(md.split("## Recipes")[1].split("\n## ")[0])
    con = recipes[(CON, "contrastive")]
    assert con[2] == BASE and "900 s (15.0 min)" in con and "1200" in con and "13" in con and "2e-05" in con
    assert recipes[(MLM, "mlm")][3] == "80 (+30 head)"
    mlm = md.split("## MLM")[1].split("\n## ")[0]
    assert "2.500" in mlm and "2.100" in mlm and "12.18" in mlm and "8.17" in mlm
    assert "thquad_dev 3" in md  # excluded evaluation questions
    assert "Benchmark timings: test cpu, SIMD avx2" in md


def test_domain_adaptation_sentence_only_when_mlm_reads_leaflet_paragraphs():
    with_leaflets = training.training_markdown(rows(), runs(412), entries())
    leakage = with_leaflets.split("## Leakage")[1].split("\n## ")[0]
    assert "reads 412 paragraphs of the leaflet text the `drug_leaflets` task searches" in leakage
    assert "unsupervised domain adaptation" in leakage
    without = training.training_markdown(rows(), runs(0), entries())
    assert "unsupervised domain adaptation" not in without.split("## Leakage")[1].split("\n## ")[0]


def test_inverse_cloze_training_on_the_searched_passages_is_said_in_the_leakage_section():
    r = runs()
    name = "static corpus-tuned"
    r[name] = run_of(name, "static-tune", BASE, 40, 180.0, examples=9446, ict_pairs=4306)
    r[name]["leakage"]["drug_leaflets"]["paragraphs"] = 758
    leakage = training.training_markdown(rows(), r, entries()).split("## Leakage")[1].split("\n## ")[0]
    line = next(l for l in leakage.splitlines() if l.startswith(name))
    assert "758 paragraphs" in line and "4306 inverse-cloze pairs" in line and "no questions" in line
    assert "trained to retrieve" in line
    assert not any("inverse-cloze" in l for l in leakage.splitlines() if l.startswith(CON))


def built(name, content):
    entry = {e.name: e for e in entries()}[name]
    folder = registry.trained_dir(entry)
    folder.mkdir(parents=True)
    (folder / registry.TRAINED_MARKER).write_text(json.dumps(content), encoding="utf-8")


def test_snapshot_copies_built_runs_and_keeps_those_not_built_here(tmp_path):
    out = tmp_path / "reports" / "training.json"
    out.parent.mkdir()
    train = {e.name: e.train for e in entries()}
    kept = {**runs()[CE], "params": dict(train[CE]["params"])}
    stale = {**runs()[MLM], "params": dict(train[MLM]["params"]), "seed": 99}
    out.write_text(json.dumps({CE: kept, CON: {"name": CON, "steps": 1}, MLM: stale,
                               "a model the registry no longer names": kept}), encoding="utf-8")
    built(CON, runs()[CON])
    assert run_store.snapshot(MODELS, out) == [CON]
    stored = json.loads(out.read_text(encoding="utf-8"))
    assert stored[CON] == runs()[CON]  # replaced by the cache's copy
    assert stored[CE] == kept  # not built on this machine: kept
    assert set(stored) == {CON, CE}  # built from other settings (seed), or no longer in the registry: dropped


def test_snapshot_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "reports" / "training.json"
    out.parent.mkdir()
    out.write_text(json.dumps({CE: {"name": CE}}), encoding="utf-8")
    built(CON, runs()[CON])

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(BenchError, match="training.json: cannot write"):
        run_store.snapshot(MODELS, out)
    assert json.loads(out.read_text(encoding="utf-8")) == {CE: {"name": CE}}
    assert [p.name for p in out.parent.iterdir()] == ["training.json"]  # no temporary file left behind


def test_write_makes_markdown_and_loss_plot(tmp_path):
    results.write(rows(), tmp_path / "results.json")
    (tmp_path / "training.json").write_text(json.dumps(runs()), encoding="utf-8")
    paths = training.write(tmp_path / "results.json", tmp_path / "training.json", MODELS, tmp_path)
    assert paths == [tmp_path / "training.md", tmp_path / "training-loss.png"]
    assert (tmp_path / "training-loss.png").stat().st_size > 1000
    assert "![training loss per step](training-loss.png)" in (tmp_path / "training.md").read_text(encoding="utf-8")


def test_write_without_losses_skips_the_plot(tmp_path):
    results.write(rows(), tmp_path / "results.json")
    no_losses = {name: {**r, "losses": [], "head_losses": []} for name, r in runs().items()}
    (tmp_path / "training.json").write_text(json.dumps(no_losses), encoding="utf-8")
    paths = training.write(tmp_path / "results.json", tmp_path / "training.json", MODELS, tmp_path)
    assert paths == [tmp_path / "training.md"] and not (tmp_path / "training-loss.png").exists()
    assert "training-loss.png" not in (tmp_path / "training.md").read_text(encoding="utf-8")


def test_bad_training_json_is_one_line_naming_the_file(tmp_path, capsys):
    (tmp_path / "training.json").write_text(json.dumps({CON: [1, 2]}), encoding="utf-8")
    assert main(["report", "--out", str(tmp_path), "--training-only", "--models", str(MODELS)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "training.json" in err and CON in err


def test_report_writes_training_md_only_when_there_is_training_to_report(tmp_path, capsys):
    plain = [r for r in rows() if r.model in (BM25, BASE)]
    results.write(plain, tmp_path / "results.json")
    assert main(["report", "--out", str(tmp_path), "--models", str(MODELS)]) == 0
    assert (tmp_path / "xquad_tr.md").exists() and not (tmp_path / "training.md").exists()
    assert main(["report", "--out", str(tmp_path), "--training-only", "--models", str(MODELS)]) == 2
    assert "training.json" in capsys.readouterr().err
    results.write(rows(), tmp_path / "results.json")
    (tmp_path / "xquad_tr.md").unlink()
    assert main(["report", "--out", str(tmp_path), "--models", str(MODELS)]) == 0
    assert (tmp_path / "xquad_tr.md").exists() and (tmp_path / "training.md").exists()
    (tmp_path / "training.md").unlink()
    (tmp_path / "xquad_tr.md").unlink()
    assert main(["report", "--out", str(tmp_path), "--training-only", "--models", str(MODELS)]) == 0
    assert (tmp_path / "training.md").exists() and not (tmp_path / "xquad_tr.md").exists()


def test_train_snapshots_after_each_build(tmp_path, monkeypatch):
    """bench train keeps reports/training.json (beside models.yaml) current; the build itself is faked here."""
    from bench.train import build

    models = tmp_path / "models.yaml"
    models.write_text(MODELS.read_text(encoding="utf-8"), encoding="utf-8")
    made = []

    def fake_build_one(entry, by_name, models_path, max_steps):
        built(entry.name, runs()[entry.name])
        made.append(json.loads((tmp_path / "reports" / "training.json").read_text(encoding="utf-8"))
                    if (tmp_path / "reports" / "training.json").exists() else {})
        return runs()[entry.name]

    monkeypatch.setattr(build, "build_one", fake_build_one)
    build.build(MLMCON, models)
    assert made[1].keys() == {MLM}  # the MLM stage was stored before the contrastive stage began
    assert json.loads((tmp_path / "reports" / "training.json").read_text(encoding="utf-8")).keys() == {MLM, MLMCON}


def test_training_machine_is_named_when_recorded():
    from bench.reports import training

    runs = {"a": {"recipe": "contrastive", "base": "b", "machine": {"cpu": "EPYC (2 cores)", "simd": "avx2", "threads": 2}},
            "c": {"recipe": "mlm", "base": "b"}}
    md = training.training_markdown([], runs, [])
    assert "measured on EPYC (2 cores), SIMD avx2, 2 threads" in md
    assert "training.json of c does not name its machine" in md
