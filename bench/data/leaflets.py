"""Turkish drug leaflets (kullanma talimatı): passages per medicine and section, and the questions task over them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.data import convert
from bench.data.chunking import Chunk, chunk_text
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
    raw = convert.read_text(path)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise BenchError(f"{path}:{e.lineno}: malformed JSON: {e.msg}") from None
    items = data.get("prospektus") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise BenchError(f"{path}: expected a JSON object with a non-empty 'prospektus' list")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("ilacAdi"), str):
            raise BenchError(f"{path}: prospektus[{i}]: field 'ilacAdi' is missing or not a string")
    return items


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
    from bench.data.tasks import RetrievalData

    items = {item["ilacAdi"]: item for item in read(path)}
    all_chunks = chunks(path)
    by_section: dict[tuple[str, str], list[Chunk]] = {}
    for c in all_chunks:
        by_section.setdefault((c.meta["ilacAdi"], c.meta["section"]), []).append(c)
    queries, qrels = {}, {}
    for lineno, row in convert.jsonl_objects(questions_path, "'_id', 'text', 'ilacAdi', 'section', 'evidence'"):
        where = f"{questions_path}:{lineno}"
        for key in ("_id", "text", "ilacAdi", "section", "evidence"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise BenchError(f"{where}: field '{key}' is missing or empty")
        if row["_id"] in queries:
            raise BenchError(f"{where}: duplicate query id '{row['_id']}'")
        if row["ilacAdi"] not in items:
            raise BenchError(f"{where}: ilacAdi '{row['ilacAdi']}' is not a medicine in {path}")
        if row["section"] not in SECTIONS:
            raise BenchError(f"{where}: section '{row['section']}' is not one of {', '.join(SECTIONS)}")
        section_text = items[row["ilacAdi"]].get(row["section"]) or ""
        ids = relevant(by_section.get((row["ilacAdi"], row["section"]), []), section_text, row["evidence"])
        if not ids:
            raise BenchError(f"{where}: evidence is not found in {row['ilacAdi']}.{row['section']} (a qrel pointing at no passage)")
        queries[row["_id"]] = row["text"]
        qrels[row["_id"]] = {i: 1 for i in ids}
    corpus = {c.id: {"title": c.title, "text": c.text} for c in all_chunks}
    return RetrievalData(name, corpus, queries, qrels)
