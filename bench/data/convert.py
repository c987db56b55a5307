"""Question/context data (SQuAD JSON, JSONL, CSV) -> BEIR/mteb retrieval layout, with a reject report.

A context becomes one corpus document; each question becomes one query whose qrel points at its context.
Contexts without questions stay in the corpus as distractors.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench import fileio
from bench.errors import BenchError


@dataclass
class Pair:
    question: str
    context: str
    qid: str = ""
    title: str = ""
    answers: list[str] = field(default_factory=list)
    where: str = ""  # file position, for the reject report
    # The context is only the line beside the question (format `lines`): a repair may look for a better one.
    context_guessed: bool = False


@dataclass
class Converted:
    corpus: dict[str, dict]  # doc id -> {"title", "text"}
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    rejects: list[dict]
    repairs: list[dict] = field(default_factory=list)  # every change a repair made: tier, before, after, score


# Reject reasons that only note a change: the question is still in the task.
INFORMATIONAL = frozenset({"rekeyed_duplicate_id"})


def turkish_lower(text: str) -> str:
    # str.lower() maps I->i and İ->i̇ (with a combining dot); Turkish needs I->ı and İ->i. NFC first: a decomposed
    # İ (I + U+0307) would otherwise become ı + a lone dot, and the word would lose its first letter.
    text = unicodedata.normalize("NFC", text).replace("I", "ı").replace("İ", "i").lower()
    return text.replace("i\u0307", "i")


def nfc(text: str) -> str:
    """One spelling per character: a decomposed İ (I + U+0307) must match, tokenize and embed like İ."""
    return unicodedata.normalize("NFC", text)


def clean(text: str) -> str:
    """BOMs and whitespace runs make identical paragraphs look different; fold them away."""
    return " ".join(nfc(text.replace("\ufeff", "")).split())


def lines(text: str):
    """(line number, line) split on "\n" only: str.splitlines() also cuts at U+2028, U+0085 and others, which
    JSON strings may hold as plain text."""
    for lineno, line in enumerate(text.split("\n"), 1):
        yield lineno, line.removesuffix("\r")


def dropped_questions(rejects: list[dict]) -> dict[str, int]:
    """Reason -> count of the questions a conversion left out."""
    return dict(sorted(Counter(r["reason"] for r in rejects if r.get("dropped") == "question").items()))


def read_text(path: Path) -> str:
    if path.is_dir():
        raise BenchError(f"{path}: is a folder; expected a file")
    if not path.is_file():
        raise BenchError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise BenchError(f"{path}:{line}: not UTF-8 text (byte offset {e.start}); re-save the file as UTF-8") from None


def _load_json(path: Path):
    return fileio.parse_json(read_text(path), str(path))


def squad_pairs(path: Path) -> tuple[list[Pair], list[tuple[str, str]]]:
    """Pairs plus the (title, context) of every paragraph, so question-less contexts survive as distractors."""
    raw = _load_json(path)
    articles = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(articles, list):
        raise BenchError(f"{path}: expected SQuAD JSON with a top-level 'data' list")
    pairs, contexts = [], []
    for a, art in enumerate(articles):
        if not isinstance(art, dict):
            raise BenchError(f"{path}: data[{a}]: expected an object with 'title' and 'paragraphs'")
        title = _field(path, art, "title", f"data[{a}]", "a string", str, "")
        for p, para in enumerate(_field(path, art, "paragraphs", f"data[{a}]", "a list", list)):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(para, dict):
                raise BenchError(f"{path}: {where}: expected an object with 'context' and 'qas'")
            ctx = _field(path, para, "context", where, "a string", str)
            contexts.append((title, ctx))
            for q, qa in enumerate(_field(path, para, "qas", where, "a list", list, [])):
                pairs.append(_squad_pair(path, qa, ctx, title, f"{where}.qas[{q}]"))
    return pairs, contexts


def _field(path: Path, obj: dict, key: str, where: str, what: str, kind: type, default=None):
    """obj[key] when it is a `kind`; a missing or null key gives `default` where one is allowed."""
    value = obj.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, kind):
        raise BenchError(f"{path}: {where}.{key}: expected {what}")
    return value


def _squad_pair(path: Path, qa, ctx: str, title: str, where: str) -> Pair:
    if not isinstance(qa, dict):
        raise BenchError(f"{path}: {where}: expected an object with 'question' and 'answers'")
    question = _field(path, qa, "question", where, "a string", str)
    answers = []
    for i, ans in enumerate(_field(path, qa, "answers", where, "a list", list, [])):
        if not isinstance(ans, dict):
            raise BenchError(f"{path}: {where}.answers[{i}]: expected an object with 'text'")
        answers.append(_field(path, ans, "text", f"{where}.answers[{i}]", "a string", str, ""))
    qid = qa.get("id")
    if qid is not None and not isinstance(qid, (str, int)):
        raise BenchError(f"{path}: {where}.id: expected a string or a number")
    return Pair(question, ctx, "" if qid is None else str(qid), title, answers, where)


def _row_pair(path: Path, lineno: int, row: dict) -> Pair:
    for key in ("question", "context"):
        if not isinstance(row.get(key), str):
            raise BenchError(f"{path}:{lineno}: field '{key}' is missing or not a string")
    answer = row.get("answer")
    answers = [answer] if isinstance(answer, str) else answer if answer is not None else []
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        # A list of accepted answers is read as such; anything else was once dropped without a word.
        raise BenchError(f"{path}:{lineno}: field 'answer' must be a string or a list of strings")
    return Pair(row["question"], row["context"], str(row.get("id") or ""), str(row.get("title") or ""),
                [a for a in answers if a], f"line {lineno}")


def jsonl_objects(path: Path, expected: str):
    """(line number, object) for each non-blank line of a JSONL file; `expected` names the fields for errors."""
    for lineno, line in lines(read_text(path)):
        if not line.strip():
            continue
        row = fileio.parse_json(line, str(path), lineno)
        if not isinstance(row, dict):
            raise BenchError(f"{path}:{lineno}: expected a JSON object with {expected}")
        yield lineno, row


def jsonl_pairs(path: Path) -> list[Pair]:
    return [_row_pair(path, lineno, row) for lineno, row in jsonl_objects(path, "'question' and 'context'")]


def csv_pairs(path: Path) -> list[Pair]:
    # newline="" keeps a line break inside a quoted field; strict stops an unclosed quote from silently swallowing
    # every later row into one field.
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), strict=True)
    pairs, start = [], 1
    old_limit = csv.field_size_limit(2**31 - 1)  # a long paragraph is data, not an error
    try:
        if not reader.fieldnames or not {"question", "context"} <= set(reader.fieldnames):
            # Never quote the header: the file may not be a CSV of questions at all.
            raise BenchError(f"{path}:1: CSV header must name columns 'question' and 'context'")
        start = reader.line_num + 1
        for row in reader:
            pairs.append(_row_pair(path, start, row))
            start = reader.line_num + 1
    except csv.Error as e:
        raise BenchError(f"{path}:{start}: malformed CSV ({e}); check the quoting of that record") from None
    finally:
        csv.field_size_limit(old_limit)
    return pairs


def build(pairs: list[Pair], extra_contexts: list[tuple[str, str]] = (), repair=None) -> Converted:
    """Each reject says what it cost: `dropped` is "question" or "context" (merged or empty), absent when only
    noted. `repair` (bench.data.repair.Options): re-align answers, merge a question asked of several contexts into one
    with several relevant passages, and match orphan questions to a context; None converts as strictly as before."""
    from bench.data import repair as fix
    corpus: dict[str, dict] = {}
    doc_of: dict[str, str] = {}  # cleaned context -> doc id
    raw_forms: dict[str, set[str]] = defaultdict(set)
    rejects: list[dict] = []

    def reject(reason: str, where: str, dropped: str | None = "question", **detail):
        rejects.append({"reason": reason, "where": where, **({"dropped": dropped} if dropped else {}), **detail})

    def doc_id(title: str, raw: str, where: str, paragraph: bool) -> str | None:
        """`paragraph`: the source lists this context as a paragraph of its own, so a repeat is a duplicate."""
        text = clean(raw)
        if not text:
            # A question on an empty context goes with it; a listed empty paragraph costs only itself.
            reject("empty_context", where, "context" if paragraph else "question")
            return None
        did = doc_of.get(text)
        if did is None:
            did = doc_of[text] = f"d{len(corpus):05d}"
            corpus[did] = {"title": clean(title), "text": text}
        elif paragraph or raw not in raw_forms[did]:
            reject("duplicate_context", where, "context", merged_into=did)
        raw_forms[did].add(raw)
        return did

    for i, (title, ctx) in enumerate(extra_contexts):
        doc_id(title, ctx, f"context {i}", paragraph=True)

    repairs: list[dict] = []
    kept: list[tuple[Pair, str, str]] = []
    seen_on_doc: set[tuple[str, str]] = set()
    docs_of_question: dict[str, set[str]] = defaultdict(set)
    orphans: list[tuple[Pair, str, str | None]] = []  # (pair, question, the doc of its guessed context)
    unaligned: list[tuple[Pair, str, str]] = []  # (pair, question, doc): an answer that aligns nowhere in it
    matching = repair is not None and repair.ranker is not None

    def keep(pair: Pair, question: str, did: str) -> None:
        if (question, did) in seen_on_doc:
            reject("duplicate_question", pair.where, id=pair.qid, question=question)
            return
        seen_on_doc.add((question, did))
        docs_of_question[question].add(did)
        kept.append((pair, question, did))

    for pair in pairs:
        question = clean(pair.question)
        if matching and question and pair.answers and not clean(pair.context):
            orphans.append((pair, question, None))
            continue
        did = doc_id(pair.title, pair.context, pair.where, paragraph=False)
        if did is None:
            continue
        if not question:
            reject("empty_question", pair.where, id=pair.qid)
            continue
        text = corpus[did]["text"]
        if pair.answers and not any(clean(a) and clean(a) in text for a in pair.answers):
            found = None
            if repair is not None:
                found = next((al for a in pair.answers if (al := fix.align(clean(a), text, repair.fuzzy_threshold))),
                             None)
            if found is None and matching and pair.context_guessed:
                orphans.append((pair, question, did))
                continue
            if found is None and matching:
                unaligned.append((pair, question, did))  # kept only if BM25 vouches for its context (below)
                continue
            if found is None:
                reject("answer_not_in_context", pair.where, id=pair.qid, question=question, answer=pair.answers[0])
                continue
            repairs.append({"tier": found.tier, "id": pair, "where": pair.where, "question": question,
                            "before": clean(pair.answers[0]), "after": found.after, "score": found.score})
        keep(pair, question, did)

    if unaligned:
        doc_ids = list(corpus)
        vouched = fix.vouch([q for _, q, _ in unaligned], [doc_ids.index(d) for _, _, d in unaligned],
                            [corpus[d]["text"] for d in doc_ids], repair)
        for (pair, question, did), confidence in zip(unaligned, vouched):
            if confidence is None:
                reject("answer_not_in_context", pair.where, id=pair.qid, question=question, answer=pair.answers[0])
                continue
            repairs.append({"tier": "context", "id": pair, "where": pair.where, "question": question,
                            "before": clean(pair.answers[0]), "after": did, "score": confidence})
            keep(pair, question, did)
    if orphans:
        doc_ids = list(corpus)
        matches = fix.match_orphans([(q, [clean(a) for a in p.answers]) for p, q, _ in orphans],
                                    [corpus[d]["text"] for d in doc_ids], repair)
        for (pair, question, given), (at, confidence, why) in zip(orphans, matches):
            if at is None:
                reject(why, pair.where, id=pair.qid, question=question, answer=pair.answers[0], confidence=confidence)
                continue
            repairs.append({"tier": "orphan", "id": pair, "where": pair.where, "question": question,
                            "before": given, "after": doc_ids[at], "score": confidence})
            keep(pair, question, doc_ids[at])

    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    source_ids = {pair.qid for pair, _, _ in kept}
    merged: dict[str, str] = {}  # question -> the id it is kept under
    id_of: dict[int, str] = {}  # id(pair) -> the query id it ended up under
    for pair, question, did in kept:
        several = sorted(docs_of_question[question])
        if len(several) > 1 and repair is None:
            # Ambiguous gold: the same question would be right for two paragraphs.
            reject("question_in_two_contexts", pair.where, id=pair.qid, question=question, docs=several)
            continue
        if len(several) > 1:
            # Still a fair retrieval question: each of its contexts answers it, so each is relevant.
            if question in merged:
                id_of[id(pair)] = merged[question]
                continue
        qid = pair.qid or f"q{len(queries):05d}"
        if qid in queries:
            # Real SQuAD files reuse ids across different questions (true repeats were rejected above):
            # the id is not a key to trust, the question is.
            new = next(f"{qid}-{n}" for n in range(2, len(kept) + 3)
                       if f"{qid}-{n}" not in queries and f"{qid}-{n}" not in source_ids)
            reject("rekeyed_duplicate_id", pair.where, None, id=qid, new_id=new)
            qid = new
        queries[qid] = question
        qrels[qid] = {d: 1 for d in several} if len(several) > 1 else {did: 1}
        id_of[id(pair)] = qid
        if len(several) > 1:
            merged[question] = qid
            repairs.append({"tier": "several_contexts", "id": pair, "where": pair.where, "question": question,
                            "before": [did], "after": several, "score": None})
    # A repair names the query id the question is kept under (ids are given only now); a repaired question that
    # was then dropped (a duplicate) has no repair to report.
    repairs = [{**r, "id": id_of[id(r["id"])]} for r in repairs if id(r["id"]) in id_of]
    return Converted(corpus, queries, qrels, rejects, repairs)


def lines_pairs(path: Path, contexts: Path) -> list[Pair]:
    """Two parallel files: line n of `path` is a question (optionally TAB and its answer), line n of `contexts` its
    context, blank where it has none. Differing line counts leave no line-for-line reading: an error."""
    def read_lines(p: Path) -> list[str]:
        out = [line for _, line in lines(read_text(p))]
        return out[:-1] if out and out[-1] == "" else out  # the final newline ends a line; it starts none

    questions, texts = read_lines(path), read_lines(contexts)
    if len(questions) != len(texts):
        raise BenchError(f"{path}: {len(questions)} questions but {contexts}: {len(texts)} contexts; the `lines` "
                         "format needs one context line per question line (a blank line where there is none)")
    pairs = []
    for n, (q, ctx) in enumerate(zip(questions, texts), 1):
        question, _, answer = q.partition("\t")
        pairs.append(Pair(question, ctx, "", "", [answer] if answer.strip() else [], f"line {n}",
                          context_guessed=True))
    return pairs


def convert_file(path: Path, fmt: str, repair=None, contexts: Path | None = None) -> Converted:
    """`repair`: bench.data.repair.Options, or None for the strict conversion tasks are read with."""
    if fmt == "squad":
        pairs, extra = squad_pairs(path)
        return build(pairs, extra, repair)
    if fmt == "jsonl":
        return build(jsonl_pairs(path), repair=repair)
    if fmt == "csv":
        return build(csv_pairs(path), repair=repair)
    if fmt == "lines":
        if contexts is None:
            raise BenchError(f"{path}: format 'lines' needs the parallel contexts file (--contexts FILE, one context "
                             "per line)")
        return build(lines_pairs(path, contexts), repair=repair)
    raise BenchError(f"{path}: unknown input format '{fmt}' (expected squad, jsonl, csv or lines)")


def guess_format(path: Path) -> str:
    return {".json": "squad", ".jsonl": "jsonl", ".csv": "csv"}.get(path.suffix.lower(), "squad")


def write_beir(conv: Converted, out: Path, split: str = "test") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        for did, doc in conv.corpus.items():
            f.write(json.dumps({"_id": did, "title": doc["title"], "text": doc["text"]}, ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid, text in conv.queries.items():
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in conv.qrels.items():
            for did, score in docs.items():
                f.write(f"{qid}\t{did}\t{score}\n")
    for name, rows in (("rejects.jsonl", conv.rejects), ("repairs.jsonl", conv.repairs)):
        with open(out / name, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
