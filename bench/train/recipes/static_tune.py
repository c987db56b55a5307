"""static-tune: a model2vec static model fitted to its teacher's embeddings of the training texts, then trained on
question-paragraph pairs (and inverse-cloze pairs cut from the leaflet passages, when ict_sentences > 0)."""

from __future__ import annotations

from pathlib import Path

from bench.data import leaflets
from bench.data.retrieval import passages_of
from bench.errors import BenchError
from bench.train import ict, leakage
from bench.train.corpus import Job, base_folder, param_bi_encoder, question_pairs

# A static model fitted to its teacher's embeddings of the training texts (fit_*), then trained on the
# question-paragraph pairs with in-batch negatives (pairs_*): model2vec's own trainers (bench.train.distill).
# ict_sentences > 0 adds that many inverse-cloze pairs per leaflet passage (bench.train.ict), sentence kept in
# its passage with probability ict_keep.
DEFAULTS = {"teacher": None, "fit_epochs": 30, "fit_lr": 1e-3, "pairs_epochs": 5, "pairs_lr": 1e-3,
            "temperature": 0.05, "batch_size": 64, "patience": 3, "max_seq_length": 256,
            "exclude_eval_questions": True, "ict_sentences": 0, "ict_keep": 0.1}
LEAKAGE_NOTE = ("the fit reads the teacher's embeddings of the leaflet text the drug task searches (no questions "
                "or labels) and of thquad train questions and paragraphs; the pair stage reads thquad train pairs "
                "only")
ICT_LEAKAGE_NOTE = ("the fit reads the teacher's embeddings of the leaflet text the drug task searches (no "
                    "questions or labels) and of thquad train questions and paragraphs; the pair stage reads thquad "
                    "train pairs and inverse-cloze pairs cut from the leaflet passages the drug task searches (a "
                    "sentence of a passage as the pseudo-question for the rest of it; no questions or labels, but "
                    "the sentences that hold the drug task's answers are among them)")


def _ict_pairs(job: Job) -> tuple[list, list[str]]:
    """(inverse-cloze (sentence, passage) pairs, the passages' texts) from the leaflet files, chunked as the drug
    task and `bench search` chunk them; pseudo-questions equal to an evaluation question dropped (and counted) like
    real ones when exclude_eval_questions is set. Records how many pairs in params["ict_pairs"]."""
    entry, params = job.entry, job.params
    n = params.get("ict_sentences") or 0
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise BenchError(f"'{entry.name}': field 'train.params.ict_sentences' must be a whole number of sentences "
                         f"per passage, 0 for none (got {n!r})")
    if not n:
        return [], []
    keep = params.get("ict_keep")
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 <= keep <= 1:
        raise BenchError(f"'{entry.name}': field 'train.params.ict_keep' must be a probability from 0 to 1 (got {keep!r})")
    chunks = [c for f in job.files if leaflets.is_leaflet_file(f) for c in leaflets.chunks(f)]
    if not chunks:
        raise BenchError(f"'{entry.name}': field 'train.params.ict_sentences' needs passages to draw sentences from: "
                         "a leaflet file in train.data (or set ict_sentences: 0)")
    cloze = ict.pairs([(c.title, c.text) for c in chunks], n, float(keep), job.seed)
    if params.get("exclude_eval_questions"):
        kept, dropped = leakage.exclude_questions([q for q, _ in cloze], job.evals)
        cloze = [p for p, k in zip(cloze, kept) if k]
        excluded = params.setdefault("excluded_eval_questions", {})
        for task, k in dropped.items():
            excluded[task] = excluded.get(task, 0) + k
    params["ict_pairs"] = len(cloze)
    return cloze, [c.text for c in chunks]


def prepare(job: Job):
    """((teacher folder, fit texts, pairs), training questions, training paragraphs) from the train side's pairs
    (evaluation questions dropped); its pairs need no mined negatives (in-batch negatives only).

    Fit texts are pairs of lists (as the static model reads them, as the teacher reads them): every training
    question and paragraph and the leaflet text, each side with its own prefixes. Pairs are (question, its
    paragraph) as the static model reads them."""
    conv = question_pairs(job)
    entry, params = job.entry, job.params
    teacher = None
    if int(params["fit_epochs"]) > 0:
        teacher = param_bi_encoder(job, "teacher", "the transformer bi-encoder whose embeddings the static model is "
                                   "fitted to (or set fit_epochs: 0)")
    ids, passages = passages_of(conv.corpus)
    text_of = dict(zip(ids, passages))
    sq, sp = entry.query_prefix or "", entry.passage_prefix or ""
    pairs = [(sq + conv.queries[q], sp + text_of[d]) for q in sorted(conv.qrels) for d in sorted(conv.qrels[q])]
    cloze, read = _ict_pairs(job)
    params["leakage_note"] = ICT_LEAKAGE_NOTE if cloze else LEAKAGE_NOTE
    pairs += [(sq + q, sp + p) for q, p in cloze]
    questions = sorted(set(conv.queries.values()))
    folder, fit = None, ([], [])
    if teacher is not None:
        tq, tp = teacher.query_prefix or "", teacher.passage_prefix or ""
        paragraphs = sorted({t.strip() for t in passages + job.texts if t.strip()})
        fit = ([sq + q for q in questions] + [sp + p for p in paragraphs],
               [tq + q for q in questions] + [tp + p for p in paragraphs])
        folder = base_folder(teacher)
    # The leakage check reads the pseudo-questions and their passages too; the fit does not.
    checked = sorted(set(questions) | {q for q, _ in cloze})
    return (folder, fit, pairs), checked, [d["text"] for d in conv.corpus.values()] + job.texts + read


def train(base: str, teacher, fit_texts, pairs, out: Path, params: dict, seed: int) -> dict:
    """The base static model tuned on its teacher's embeddings, then on pairs; see bench.train.distill."""
    from bench.train.distill import static_tune as tune

    return tune(base, teacher, fit_texts, pairs, out, params, seed)
