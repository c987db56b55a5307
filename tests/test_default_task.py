"""The embedded default task is data the project wrote: check it is the task the README promises."""

import json
from collections import Counter, defaultdict

from bench.models import encoders, registry
from bench.measure import evaluate
from bench.data import tasks
from conftest import DEFAULT_TASK_DIR


def test_shape_of_the_embedded_task():
    data = tasks.load(tasks.resolve(["tr_mini_wiki"])[0])
    topics = Counter(json.loads(l)["topic"] for l in (DEFAULT_TASK_DIR / "corpus.jsonl").read_text(encoding="utf-8").splitlines())
    assert len(data.corpus) >= 80 and len(topics) >= 16 and len(data.queries) >= 240
    assert any("sağlık" in t.lower() or "tıp" in t.lower() for t in topics)
    assert min(topics.values()) >= 3  # every question has same-topic distractors
    assert all(len(rel) == 1 for rel in data.qrels.values())
    assert len(set(data.queries.values())) == len(data.queries)
    per_doc = defaultdict(int)
    for rel in data.qrels.values():
        per_doc[next(iter(rel))] += 1
    assert set(per_doc) == set(data.corpus)  # every paragraph is some question's answer


def test_bm25_does_not_solve_it():
    """A task that lexical overlap solves perfectly measures nothing."""
    data = tasks.load(tasks.resolve(["tr_mini_wiki"])[0])
    entry = next(e for e in registry.load_registry(DEFAULT_TASK_DIR.parent.parent / "models.yaml") if e.loader == "bm25")
    m = evaluate.evaluate(encoders.load(entry), data).metrics
    assert 0.3 < m["recall_at_1"] < 0.95
