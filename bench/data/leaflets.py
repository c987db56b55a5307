"""Turkish drug leaflets (kullanma talimatı): passages per medicine and section, and the questions task over them."""

from __future__ import annotations

import re
from pathlib import Path

from bench.data import convert
from bench.data.chunking import Chunk, chunk_text
from bench import fileio
from bench.errors import BenchError

SECTIONS = {
    "nedir": "nedir ve ne için kullanılır",
    "neIcinKullanilir": "ne için kullanılır",
    "dikkatEdilmesiGerekenler": "kullanmadan önce dikkat edilmesi gerekenler",
    "nasilKullanilir": "nasıl kullanılır",
    "yanEtkileri": "olası yan etkiler",
    "saklanmasi": "nasıl saklanır",
}
# `uyari` is the same boilerplate in every leaflet ("read this leaflet, keep it, ask your doctor"): sixty
# near-copies would only add ties, and no question is about it, so it is left out.
SKIPPED_SECTIONS = ("uyari",)


def display_name(ilac_adi: str) -> str:
    """'voltarenEmulgel' -> 'Voltaren Emulgel': the medicine's name kept with every passage."""
    return " ".join(w.capitalize() for w in re.sub(r"(?<=[a-zçğıöşü])(?=[A-ZÇĞİÖŞÜ])", " ", ilac_adi).split())


def read(path: Path) -> list[dict]:
    """The leaflets, NFC-normalised (evidence is matched character for character against them)."""
    raw = convert.read_text(path)
    data = fileio.parse_json(raw, str(path))
    items = data.get("prospektus") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise BenchError(f"{path}: expected a JSON object with a non-empty 'prospektus' list")
    first: dict[str, int] = {}
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("ilacAdi"), str) or not item["ilacAdi"].strip():
            raise BenchError(f"{path}: prospektus[{i}]: field 'ilacAdi' is missing or not a string")
        for key in (*SECTIONS, *SKIPPED_SECTIONS):
            if item.get(key) is not None and not isinstance(item[key], str):
                raise BenchError(f"{path}: prospektus[{i}]: field '{key}' is not a string")
        # Passage ids and questions name a medicine by ilacAdi; a second leaflet under one name would be lost.
        if item["ilacAdi"] in first:
            raise BenchError(f"{path}: prospektus[{i}]: field 'ilacAdi' repeats prospektus[{first[item['ilacAdi']]}]'s")
        first[item["ilacAdi"]] = i
        out.append({k: convert.nfc(v) if isinstance(v, str) else v for k, v in item.items()})
    return out


def is_leaflet_file(path: Path) -> bool:
    if path.suffix.lower() != ".json":
        return False
    try:
        head = path.read_text(encoding="utf-8", errors="ignore")[:200]
    except OSError:
        return False
    return '"prospektus"' in head


def chunks(path: Path) -> list[Chunk]:
    out = []
    for item in read(path):
        name = display_name(item["ilacAdi"])
        for key, heading in SECTIONS.items():
            text = item.get(key)
            if isinstance(text, str) and text.strip():
                out += chunk_text(f"{item['ilacAdi']}-{key}", f"{name} — {heading}", text, str(path), f"section {key}",
                                  meta={"ilacAdi": item["ilacAdi"], "section": key})
    return out


def relevant(chunks_of_section: list[Chunk], section_text: str, evidence: str) -> list[str]:
    """Passages holding the quoted answer: every one that covers at least 40% of it (an answer can straddle a cut)."""
    at = section_text.find(evidence)
    if at < 0:
        return []
    end = at + len(evidence)
    overlap = {c.id: max(0, min(end, c.end) - max(at, c.start)) for c in chunks_of_section}
    ids = [cid for cid, n in overlap.items() if n >= 0.4 * len(evidence)]
    return ids or [max(overlap, key=overlap.get)]


def task_data(path: Path, questions_path: Path, name: str):
    from bench.data.retrieval import KINDS, RetrievalData

    items = {item["ilacAdi"]: item for item in read(path)}
    all_chunks = chunks(path)
    by_section: dict[tuple[str, str], list[Chunk]] = {}
    for c in all_chunks:
        by_section.setdefault((c.meta["ilacAdi"], c.meta["section"]), []).append(c)
    queries, qrels, unanswerable, kinds = {}, {}, {}, {}
    for lineno, row in convert.jsonl_objects(questions_path, "'_id', 'text', 'ilacAdi', 'section', 'evidence'"):
        where = f"{questions_path}:{lineno}"
        kind = row.get("kind")
        if kind is not None and kind not in KINDS:
            raise BenchError(f"{where}: field 'kind' is not one of {', '.join(KINDS)}")
        no_answer = kind == "unanswerable"
        for key in ("_id", "text") if no_answer else ("_id", "text", "ilacAdi", "section", "evidence"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise BenchError(f"{where}: field '{key}' is missing or empty")
        row = {k: convert.nfc(v) if isinstance(v, str) else v for k, v in row.items()}
        # Errors name the field, not its value: a question file is data too.
        if row["_id"] in queries or row["_id"] in unanswerable:
            raise BenchError(f"{where}: field '_id' repeats the id of an earlier question")
        if kind:
            kinds[row["_id"]] = kind
        if no_answer:
            held = [key for key in ("ilacAdi", "section", "evidence") if row.get(key) is not None]
            if held:
                raise BenchError(f"{where}: field '{held[-1]}': a question of kind 'unanswerable' has no relevant "
                                 "passage (qrels); remove ilacAdi, section and evidence, or give it another kind")
            unanswerable[row["_id"]] = row["text"]
            continue
        if row["ilacAdi"] not in items:
            raise BenchError(f"{where}: field 'ilacAdi' names no medicine in {path}")
        if row["section"] not in SECTIONS:
            raise BenchError(f"{where}: field 'section' is not one of {', '.join(SECTIONS)}")
        section_text = items[row["ilacAdi"]].get(row["section"]) or ""
        ids = relevant(by_section.get((row["ilacAdi"], row["section"]), []), section_text, row["evidence"])
        if not ids:
            raise BenchError(f"{where}: field 'evidence' is not found in the section that 'ilacAdi' and 'section' name "
                             "(a qrel pointing at no passage)")
        queries[row["_id"]] = row["text"]
        qrels[row["_id"]] = {i: 1 for i in ids}
    corpus = {c.id: {"title": c.title, "text": c.text} for c in all_chunks}
    return RetrievalData(name, corpus, queries, qrels, unanswerable=unanswerable, kinds=kinds)
