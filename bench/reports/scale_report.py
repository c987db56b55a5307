"""scale.md and its plots, rebuilt from scale.json's records alone (bench.scale writes them).

- nDCG@10 against corpus size (log x) per candidate: each candidate's reference row (exact fp32 for a dense model,
  bm25s for BM25, the hybrid's own row), with its 95% bootstrap interval.
- p50 against size per index and precision, one panel per dense candidate.
- Per size and dense candidate: the cheapest index and precision (fewest bytes per passage, then lowest p50) whose
  nDCG@10 is not significantly below exact fp32 search on the same vectors (paired randomization test).
- Encoding cost beyond the largest measured size: passages/s x N, marked extrapolated.
"""

from __future__ import annotations

from pathlib import Path

from bench import fileio
from bench.index import INDEXES
from bench.measure import stats

GRID = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
LINES = {"hnsw": "-", "ivfpq": ":"}  # the latency plot's line per index; exact dashed


def _label(r: dict) -> str:
    return f"{r['model']} [{r['variant']}]"


def _is_ref(r: dict) -> bool:
    return r["precision"] in (None, "fp32") and r["index"] in ("exact", "bm25s", "bm25s+exact")


def _fmt(x, spec: str = ".3f") -> str:
    return "" if x is None else format(x, spec)


def _size(n: int) -> str:
    return f"{n:,}"


def recommendations(records: list[dict]) -> list[dict]:
    """Per (task, candidate, size): the cheapest row not significantly worse than exact fp32 on the same vectors."""
    out = []
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r["index"] in INDEXES and r.get("precision"):
            groups.setdefault((r["task"], _label(r), r["size"]), []).append(r)
    for (task, label, size), rows in sorted(groups.items()):
        ref = next((r for r in rows if r["index"] == "exact" and r["precision"] == "fp32"), None)
        if ref is None:
            continue
        ok = []
        for r in rows:
            p = stats.compare(r.get("per_query_ndcg"), ref.get("per_query_ndcg"), r["ndcg_at_10"] - ref["ndcg_at_10"])
            if not p.worse:
                ok.append((r["bytes_per_passage"], r["latency_p50_ms"], r, p))
        bytes_, p50, best, p = min(ok, key=lambda t: (t[0], t[1]))
        out.append({"task": task, "candidate": label, "size": size, "index": best["index"],
                    "precision": best["precision"], "ndcg_at_10": best["ndcg_at_10"], "exact_ndcg": ref["ndcg_at_10"],
                    "diff": round(p.diff, 5), "p_value": p.p_value, "bytes_per_passage": bytes_,
                    "exact_bytes": ref["bytes_per_passage"], "latency_p50_ms": p50,
                    "exact_p50": ref["latency_p50_ms"], "ann_recall_at_10": best["ann_recall_at_10"]})
    return out


def _table(records: list[dict]) -> str:
    from tabulate import tabulate

    rows = []
    for r in sorted(records, key=lambda r: (r["task"], _label(r), r["size"], str(r["index"]), str(r["precision"]))):
        ci = f"{r['ndcg_ci_low']:.3f}–{r['ndcg_ci_high']:.3f}" if r.get("ndcg_ci_low") is not None else ""
        rows.append([r["model"], r["variant"], _size(r["size"]), r["index"], r["precision"] or "",
                     _fmt(r["ndcg_at_10"]), ci, _fmt(r["recall_at_100"]), _fmt(r["ann_recall_at_10"]),
                     _fmt(r["latency_p50_ms"], ".2f"), _fmt(r["build_seconds"], ".1f"),
                     _fmt(r["bytes_per_passage"], ".0f"), _fmt(r["peak_mb"], ".0f"), _fmt(r["synthetic_share"], ".2f")])
    return tabulate(rows, headers=["Model", "Variant", "Passages", "Index", "Precision", "nDCG@10", "95% CI",
                                   "R@100", "ANN R@10", "p50 ms", "build s", "bytes/passage", "peak MB",
                                   "synthetic"], tablefmt="github")


def degradation(records: list[dict]) -> list[tuple[str, int, float, int, float]]:
    """(candidate, smallest size, its nDCG@10, largest size, its nDCG@10) of each reference curve."""
    curves: dict[str, list[dict]] = {}
    for r in records:
        if _is_ref(r):
            curves.setdefault(_label(r), []).append(r)
    out = []
    for label, rows in curves.items():
        rows.sort(key=lambda r: r["size"])
        out.append((label, rows[0]["size"], rows[0]["ndcg_at_10"], rows[-1]["size"], rows[-1]["ndcg_at_10"]))
    return sorted(out, key=lambda t: t[4] - t[2], reverse=True)


def extrapolated(records: list[dict]) -> list[tuple[str, int, float, float]]:
    """(candidate, size, passages/s, hours) for grid sizes beyond each dense candidate's largest measured size."""
    out = []
    by: dict[str, list[dict]] = {}
    for r in records:
        if r.get("passages_per_s"):
            by.setdefault(_label(r), []).append(r)
    for label, rows in sorted(by.items()):
        top = max(r["size"] for r in rows)
        rate = min(r["passages_per_s"] for r in rows if r["size"] == top)
        for n in GRID:
            if n > top:
                out.append((label, n, rate, n / rate / 3600))
    return out


def _axes(ax, xlabel: str, ylabel: str, title: str, legend_size: int) -> None:
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _plots(records: list[dict], out: Path, task: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for label, *_ in degradation(records):
        rows = sorted((r for r in records if _is_ref(r) and _label(r) == label), key=lambda r: r["size"])
        xs = [r["size"] for r in rows]
        ax.plot(xs, [r["ndcg_at_10"] for r in rows], marker="o", label=label)
        if all(r.get("ndcg_ci_low") is not None for r in rows):
            ax.fill_between(xs, [r["ndcg_ci_low"] for r in rows], [r["ndcg_ci_high"] for r in rows], alpha=0.15)
    _axes(ax, "passages in the corpus (log)", "nDCG@10 (95% CI)", f"{task}: quality as distractors grow", 7)
    written.append(_save(plt, fig, out / f"scale-{task}-ndcg.png"))

    dense = sorted({_label(r) for r in records if r["index"] in INDEXES and r.get("precision")})
    if dense:
        fig, axes = plt.subplots(1, len(dense), figsize=(6 * len(dense), 4.5), squeeze=False)
        for ax, label in zip(axes[0], dense):
            rows = [r for r in records if _label(r) == label and r["index"] in INDEXES]
            for key in sorted({(r["index"], r["precision"]) for r in rows}):
                pts = sorted((r for r in rows if (r["index"], r["precision"]) == key), key=lambda r: r["size"])
                ax.plot([r["size"] for r in pts], [r["latency_p50_ms"] for r in pts], marker="o",
                        linestyle=LINES.get(key[0], "--"), label=f"{key[0]} {key[1]}")
            ax.set_yscale("log")
            _axes(ax, "passages (log)", "p50 ms per question, encode + search (log)", label, 6)
        written.append(_save(plt, fig, out / f"scale-{task}-latency.png"))
    return written


def markdown(records: list[dict], plots: list[str] | None = None) -> str:
    tasks = sorted({r["task"] for r in records})
    lines = ["# Corpus-size sweep", "",
             "Each task's questions and relevant passages, plus distractors up to N passages (nested sets: the "
             "smaller set is a prefix of the larger). Distractors: real Turkish text first (other tasks' corpora, "
             "thquad_train paragraphs, the sadedegel wheel's news), chunked like the task, then seeded synthetic "
             "passages recombined from their sentences (`synthetic`: the share of the corpus). No distractor holds a "
             "sentence of the task's corpus (checked; see the sweep's log for the count dropped).", "",
             "- `ANN R@10`: share of exact fp32 search's top 10 (same model, same vectors) that the row's top 10 "
             "holds; empty for exact fp32 itself. For `exact` with int8/binary it is the precision's own loss.",
             "- `p50 ms`: one question at batch 1, encoded afresh plus searched for its top 100 (the question's "
             "encoding time is measured once per question and added to each row's search time).",
             "- `bytes/passage`: the index in memory (faiss' serialized size, NumPy's array bytes, bm25s' sparse "
             "matrix and vocabulary) over N. `peak MB`: the process' peak resident memory while the row was built "
             "and searched (it includes the fp32 vectors held for every row, so compare bytes/passage for the "
             "index alone).",
             "- `int8`: the fp32 query against 8-bit codes (sentence-transformers' `quantize_embeddings` ranges); "
             "`binary`: Hamming distance between sign bits. `+rescore`: 4 x k candidates found that way, re-ordered "
             "by the fp32 query against the candidates' fp32 vectors (kept on disk in a deployment, not counted in "
             "bytes/passage).",
             "- `ivfpq` / `pq`: faiss IndexIVFPQ, 4√N cells of which about 3% are scanned per question, each vector "
             "stored as product-quantized codes of 4-dimension sub-vectors (8 bits each from 39 × 256 passages "
             "up); its bytes/passage include each vector's 8-byte id.", ""]
    machines = sorted({f"{r.get('cpu')}, {r.get('simd')}, {r.get('threads')} threads" for r in records})
    lines += [f"Machine: {'; '.join(machines)}. Timings are medians of {40} questions on a shared 2-core machine "
              "(other jobs running): read them as contended.", ""]
    for task in tasks:
        rows = [r for r in records if r["task"] == task]
        lines += [f"## {task}", ""]
        dropped = {r["distractors_dropped"] for r in rows if r.get("distractors_dropped") is not None}
        real = {r["distractors_real"] for r in rows if r.get("distractors_real") is not None}
        if dropped or real:
            lines += [f"Real distractor passages: {', '.join(map(str, sorted(real)))}; dropped for holding a sentence "
                      f"of the task's corpus: {', '.join(map(str, sorted(dropped)))}.", ""]
        sets: dict[tuple, set[str]] = {}
        for r in rows:
            sets.setdefault((r.get("n_questions"), str(r.get("task_fingerprint"))[:8]), set()).add(_label(r))
        if len(sets) > 1:  # the task gained questions between runs: rows are comparable only within one set
            lines += ["Question sets differ between rows (the task changed between runs; compare rows only within "
                      "one set): " + "; ".join(f"{n} questions (task {fp}): {', '.join(sorted(labels))}"
                                              for (n, fp), labels in sorted(sets.items(), key=str)) + ".", ""]
        deg = degradation(rows)
        if deg:
            lines += ["### How each retriever degrades", "",
                      "| candidate | from | nDCG@10 | to | nDCG@10 | change |", "|---|---|---|---|---|---|"]
            lines += [f"| {c} | {_size(a)} | {x:.3f} | {_size(b)} | {y:.3f} | {y - x:+.3f} |" for c, a, x, b, y in deg]
            lines += [""]
        recs = [r for r in recommendations(rows)]
        if recs:
            lines += ["### Index and precision per size", "",
                      "The cheapest row (fewest bytes per passage, then lowest p50) whose nDCG@10 is not significantly "
                      "below exact fp32 search (paired randomization test, α = 0.05):", ""]
            for r in recs:
                p = "" if r["p_value"] is None else f", p = {r['p_value']:.3f}"
                lines.append(f"- **{_size(r['size'])} passages, {r['candidate']}:** {r['index']} {r['precision']} — "
                             f"nDCG@10 {r['ndcg_at_10']:.3f} vs exact fp32 {r['exact_ndcg']:.3f} ({r['diff']:+.3f}{p}), "
                             f"ANN R@10 {_fmt(r['ann_recall_at_10'])}, {r['bytes_per_passage']:.0f} vs "
                             f"{r['exact_bytes']:.0f} bytes/passage, p50 {r['latency_p50_ms']:.2f} vs "
                             f"{r['exact_p50']:.2f} ms")
            lines += [""]
        ext = extrapolated(rows)
        if ext:
            lines += ["### Encoding cost beyond the measured sizes (extrapolated)", "",
                      "passages/s measured here on a sample of distractors (batches of 32, contended), times N: "
                      "**extrapolated**, not run.", "",
                      "| candidate | passages | passages/s | hours (extrapolated) |", "|---|---|---|---|"]
            lines += [f"| {c} | {_size(n)} | {rate:.1f} | {h:.1f} |" for c, n, rate, h in ext]
            lines += [""]
        for p in plots or []:
            if f"scale-{task}-" in p:
                lines += [f"![{Path(p).stem}]({p})", ""]
        lines += ["### All rows", "", _table(rows), ""]
    return "\n".join(lines)


def write(records: list[dict], out) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for task in sorted({r["task"] for r in records}):
        written += _plots([r for r in records if r["task"] == task], out, task)
    path = out / "scale.md"
    fileio.write_atomic(path, markdown(records, [p.name for p in written]))
    return written + [path]
