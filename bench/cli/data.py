"""Commands on a task's data: inspect one question's ranking, convert a QA file into a task."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.cli.common import entry_variant, lookup, nonempty_question, out_folder, registry_entries
from bench.data import convert, tasks
from bench.models import encoders
from bench.errors import BenchError


def cmd_inspect(args) -> int:
    entry = lookup(registry_entries(args.models), args.model, "--model", args.models)
    variant = entry_variant(entry, args.variant)
    nonempty_question(args.query, "--query")
    spec, = tasks.resolve([args.task])
    data = tasks.load(spec)
    candidate = encoders.load(entry, variant)
    doc_ids = list(data.corpus)
    scores = candidate.scores([args.query], [data.doc_text(d) for d in doc_ids])[0]
    qid = next((q for q, t in data.queries.items() if t.strip() == args.query.strip()), None)
    gold = {d for d, rel in data.qrels.get(qid, {}).items() if rel > 0}
    order = sorted(range(len(doc_ids)), key=lambda i: -scores[i])
    print(f"{args.model} on {spec.name}: {args.query}")
    print("gold: " + (", ".join(sorted(gold)) if gold else "unknown (not one of the task's questions)"))
    for rank, i in enumerate(order[: args.k], 1):
        d = data.corpus[doc_ids[i]]
        mark = "*" if doc_ids[i] in gold else " "
        print(f"{mark}{rank:>3}  {scores[i]:.4f}  {doc_ids[i]:<14} {(d['title'] + ': ' if d['title'] else '')}{d['text'][:90]}")
    for g in gold - {doc_ids[i] for i in order[: args.k]}:
        rank = order.index(doc_ids.index(g)) + 1
        print(f"*{rank:>3}  {scores[doc_ids.index(g)]:.4f}  {g:<14} (the answer, below the top {args.k})")
    return 0


def cmd_convert(args) -> int:
    from bench.data import repair
    from bench.models.lexical import BM25

    src, out = Path(args.input), out_folder(args.out)
    fmt = args.format or ("lines" if args.contexts else convert.guess_format(src))
    options = None if args.no_repair else repair.Options(args.fuzzy_threshold or repair.FUZZY_THRESHOLD,
                                                             ranker=BM25())
    conv = convert.convert_file(src, fmt, options, Path(args.contexts) if args.contexts else None)
    if not conv.corpus:
        raise BenchError(f"{src}: empty corpus (no non-empty context)")
    try:
        convert.write_beir(conv, out)
    except OSError as e:
        raise BenchError(f"--out {out}: cannot write there ({e.strerror})") from None
    reasons = Counter(r["reason"] for r in conv.rejects if r["reason"] not in convert.INFORMATIONAL)
    rekeyed = sum(r["reason"] == "rekeyed_duplicate_id" for r in conv.rejects)
    print(f"{len(conv.corpus)} documents, {len(conv.queries)} questions -> {out}")
    if rekeyed:
        print(f"warning: {rekeyed} questions re-keyed: their source id was already another question's "
              "(new ids end in -2, -3, ...)")
    print("rejects: " + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none")
          + f" (details in {out / 'rejects.jsonl'})")
    tiers = Counter(r["tier"] for r in conv.repairs)
    print("repairs: " + (", ".join(f"{k} {v}" for k, v in sorted(tiers.items())) or "none")
          + (" (--no-repair)" if args.no_repair else f" (details in {out / 'repairs.jsonl'})"))
    return 0
