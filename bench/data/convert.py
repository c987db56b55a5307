"""Question/context data (SQuAD JSON, JSONL, CSV) -> BEIR/mteb retrieval layout, with a reject report.

A context becomes one corpus document; each question becomes one query whose qrel points at its context.
Contexts without questions stay in the corpus as distractors.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError


@dataclass
class Pair:
    question: str
    context: str
    qid: str = ""
    title: str = ""
    answers: list[str] = field(default_factory=list)
    where: str = ""  # file position, for the reject report


@dataclass
class Converted:
    corpus: dict[str, dict]  # doc id -> {"title", "text"}
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    rejects: list[dict]


def clean(text: str) -> str:
    """BOMs and whitespace runs make identical paragraphs look different; fold them away."""
    return " ".join(unicodedata.normalize("NFC", text.replace("\ufeff", "")).split())


def read_text(path: Path) -> str:
    if not path.is_file():
        raise BenchError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise BenchError(f"{path}:{line}: not UTF-8 text (byte offset {e.start}); re-save the file as UTF-8") from None


def _load_json(path: Path):
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise BenchError(f"{path}:{e.lineno}: malformed JSON: {e.msg}") from None


def squad_pairs(path: Path) -> tuple[list[Pair], list[tuple[str, str]]]:
    """Pairs plus the (title, context) of every paragraph, so question-less contexts survive as distractors."""
    raw = _load_json(path)
    articles = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(articles, list):
        raise BenchError(f"{path}: expected SQuAD JSON with a top-level 'data' list")
    pairs, contexts = [], []
    for a, art in enumerate(articles):
        title = art.get("title", "") if isinstance(art, dict) else ""
        paragraphs = art.get("paragraphs") if isinstance(art, dict) else None
        if not isinstance(paragraphs, list):
            raise BenchError(f"{path}: data[{a}].paragraphs: expected a list")
        for p, para in enumerate(paragraphs):
            ctx = para.get("context") if isinstance(para, dict) else None
            if not isinstance(ctx, str):
                raise BenchError(f"{path}: data[{a}].paragraphs[{p}].context: expected a string")
            contexts.append((title, ctx))
            for q, qa in enumerate(para.get("qas") or []):
                where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
                    raise BenchError(f"{path}: {where}.question: expected a string")
                answers = [x.get("text", "") for x in qa.get("answers") or [] if isinstance(x, dict)]
                pairs.append(Pair(qa["question"], ctx, str(qa.get("id", "")), title, answers, where))
    return pairs, contexts


def _row_pair(path: Path, lineno: int, row: dict) -> Pair:
    for key in ("question", "context"):
        if not isinstance(row.get(key), str):
            raise BenchError(f"{path}:{lineno}: field '{key}' is missing or not a string")
    answer = row.get("answer")
    return Pair(row["question"], row["context"], str(row.get("id") or ""), str(row.get("title") or ""),
                [answer] if isinstance(answer, str) and answer else [], f"line {lineno}")


def jsonl_objects(path: Path, expected: str):
    """(line number, object) for each non-blank line of a JSONL file; `expected` names the fields for errors."""
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise BenchError(f"{path}:{lineno}: malformed JSON: {e.msg}") from None
        if not isinstance(row, dict):
            raise BenchError(f"{path}:{lineno}: expected a JSON object with {expected}")
        yield lineno, row


def jsonl_pairs(path: Path) -> list[Pair]:
    return [_row_pair(path, lineno, row) for lineno, row in jsonl_objects(path, "'question' and 'context'")]


def csv_pairs(path: Path) -> list[Pair]:
    reader = csv.DictReader(read_text(path).splitlines())
    if not reader.fieldnames or not {"question", "context"} <= set(reader.fieldnames):
        raise BenchError(f"{path}:1: CSV header must name columns 'question' and 'context', got {reader.fieldnames}")
    return [_row_pair(path, reader.line_num, row) for row in reader]


def build(pairs: list[Pair], extra_contexts: list[tuple[str, str]] = ()) -> Converted:
    corpus: dict[str, dict] = {}
    doc_of: dict[str, str] = {}  # cleaned context -> doc id
    raw_forms: dict[str, set[str]] = defaultdict(set)
    rejects: list[dict] = []

    def doc_id(title: str, raw: str, where: str, paragraph: bool) -> str | None:
        """`paragraph`: the source lists this context as a paragraph of its own, so a repeat is a duplicate."""
        text = clean(raw)
        if not text:
            rejects.append({"reason": "empty_context", "where": where})
            return None
        did = doc_of.get(text)
        if did is None:
            did = doc_of[text] = f"d{len(corpus):05d}"
            corpus[did] = {"title": clean(title), "text": text}
        elif paragraph or raw not in raw_forms[did]:
            rejects.append({"reason": "duplicate_context", "where": where, "merged_into": did})
        raw_forms[did].add(raw)
        return did

    for i, (title, ctx) in enumerate(extra_contexts):
        doc_id(title, ctx, f"context {i}", paragraph=True)

    kept: list[tuple[Pair, str, str]] = []
    seen_on_doc: set[tuple[str, str]] = set()
    docs_of_question: dict[str, set[str]] = defaultdict(set)
    for pair in pairs:
        did = doc_id(pair.title, pair.context, pair.where, paragraph=False)
        question = clean(pair.question)
        if did is None:
            continue
        if not question:
            rejects.append({"reason": "empty_question", "where": pair.where, "id": pair.qid})
            continue
        text = corpus[did]["text"]
        if pair.answers and not any(clean(a) and clean(a) in text for a in pair.answers):
            rejects.append({"reason": "answer_not_in_context", "where": pair.where, "id": pair.qid,
                            "question": question, "answer": pair.answers[0]})
            continue
        if (question, did) in seen_on_doc:
            rejects.append({"reason": "duplicate_question", "where": pair.where, "id": pair.qid, "question": question})
            continue
        seen_on_doc.add((question, did))
        docs_of_question[question].add(did)
        kept.append((pair, question, did))

    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for pair, question, did in kept:
        if len(docs_of_question[question]) > 1:
            # Ambiguous gold: the same question would be right for two paragraphs.
            rejects.append({"reason": "question_in_two_contexts", "where": pair.where, "id": pair.qid,
                            "question": question, "docs": sorted(docs_of_question[question])})
            continue
        qid = pair.qid or f"q{len(queries):05d}"
        if qid in queries:
            rejects.append({"reason": "duplicate_id", "where": pair.where, "id": qid})
            continue
        queries[qid] = question
        qrels[qid] = {did: 1}
    return Converted(corpus, queries, qrels, rejects)


def convert_file(path: Path, fmt: str) -> Converted:
    if fmt == "squad":
        pairs, contexts = squad_pairs(path)
        return build(pairs, contexts)
    if fmt == "jsonl":
        return build(jsonl_pairs(path))
    if fmt == "csv":
        return build(csv_pairs(path))
    raise BenchError(f"{path}: unknown input format '{fmt}' (expected squad, jsonl or csv)")


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
    with open(out / "rejects.jsonl", "w", encoding="utf-8") as f:
        for r in conv.rejects:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
