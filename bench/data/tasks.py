"""Retrieval tasks: a YAML file of a few fields naming data on disk (in the spirit of lm-evaluation-harness).

Data is read into the BEIR/mteb layout: corpus {doc id: {title, text}}, queries {query id: text},
qrels {query id: {doc id: relevance}}.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BeforeValidator, Field, ValidationInfo, field_validator
from pydantic.dataclasses import dataclass

from bench import names
from bench.data import convert
from bench.data.retrieval import KINDS, RetrievalData  # noqa: F401 (tasks.KINDS, tasks.RetrievalData: the task API)
from bench.declared import REQUIRED_TEXT, STRICT, NonBlank, build, expect, one_of, wrong
from bench.errors import BenchError, Unavailable
from bench.paths import repo_root

FORMATS = ("beir", "squad", "jsonl", "csv", "leaflets")
PARAGRAPHS = ("train", "dev", "era")  # the thquad splits of bench.data.split
_NEEDS_QUESTIONS = "format 'leaflets' needs a 'questions' field naming the questions JSONL file"
# A task file's free text, as written: a number or a date YAML reads is still the text the file shows.
Text = Annotated[str, BeforeValidator(str)]


class NotGiven:
    """A field the file does not write, told apart from one it writes as null (which reads as the text 'None')."""


@dataclass(config=STRICT)
class TaskSpec:
    name: NonBlank = expect(REQUIRED_TEXT)
    format: Annotated[NonBlank, one_of(FORMATS, " is '{value}', expected one of " + ", ".join(FORMATS), after=True)] \
        = expect(REQUIRED_TEXT)
    path: NonBlank = expect(REQUIRED_TEXT)
    yaml_path: str = expect(" is not a path")  # where the spec was read from (never the file's to write)
    split: Text = "test"
    language: Text = "tur-Latn"
    default: bool = expect(" must be true or false", False)
    description: Text = ""
    licence: Text = ""
    source: Text = ""
    download: Text = ""
    notes: Text = ""
    # leaflets format: this project's questions, beside the task file (checked when absent too: that format needs it)
    questions: Text = Field(default_factory=NotGiven, validate_default=True)
    paragraphs: Text = ""  # squad format: one part (train | dev | era) of the thquad splits in bench.data.split
    pool: Text = ""  # with paragraphs: "all" searches every paragraph of the data, the part's own among distractors

    @field_validator("questions", mode="before")
    @classmethod
    def _questions_file(cls, v, info: ValidationInfo):
        if info.data.get("format") == "leaflets" and not isinstance(v, str):
            raise wrong(_NEEDS_QUESTIONS)
        return "" if isinstance(v, NotGiven) else v

    @field_validator("paragraphs", mode="before")
    @classmethod
    def _thquad_part(cls, v, info: ValidationInfo):
        if info.data.get("format") != "squad" or v not in PARAGRAPHS:
            raise wrong("field 'paragraphs' must be 'train', 'dev' or 'era' and needs format 'squad'")
        return v

    @field_validator("pool", mode="before")
    @classmethod
    def _whole_pool(cls, v, info: ValidationInfo):
        if v != "all" or not info.data.get("paragraphs"):
            raise wrong("field 'pool' must be 'all' and needs a 'paragraphs' field")
        return v

    def _resolve(self, path: str) -> Path:
        # Relative paths are relative to the task file; ${VAR} lets a user point at their own data folder.
        p = Path(os.path.expandvars(os.path.expanduser(path)))
        return p if p.is_absolute() else (Path(self.yaml_path).parent / p).resolve()

    @property
    def data_path(self) -> Path:
        return self._resolve(self.path)

    @property
    def questions_path(self) -> Path:
        return self._resolve(self.questions)

    def as_written(self, message: str) -> str:
        """`message` with each data path as the task file writes it: an expanded ${VAR} or ~ may hold a value
        that has no place in a report."""
        paths = [(self.path, self.data_path)] + ([(self.questions, self.questions_path)] if self.questions else [])
        for written, resolved in sorted(paths, key=lambda p: -len(str(p[1]))):
            message = message.replace(str(resolved), written)
        return message


FIELDS = {f for f in TaskSpec.__dataclass_fields__ if f != "yaml_path"}  # what a task file may write


def tasks_dir() -> Path:
    return Path(os.environ.get("BENCH_TASKS_DIR") or repo_root() / "tasks")


def load_spec(path: str | Path) -> TaskSpec:
    path = Path(path)
    try:
        raw = yaml.safe_load(convert.read_text(path))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        # e's own text quotes the file around the error; its `problem` only describes it.
        raise BenchError(f"{path}{where}: malformed YAML: {getattr(e, 'problem', None) or type(e).__name__}") from None
    if not isinstance(raw, dict):
        raise BenchError(f"{path}: expected a mapping with fields name, format, path")
    return build(TaskSpec, raw, str(path), allowed=FIELDS, required=("name", "format", "path"), yaml_path=str(path))


def all_specs() -> list[TaskSpec]:
    return [load_spec(p) for p in sorted(tasks_dir().glob("*.yaml"))]


def resolve(names: list[str] | None) -> list[TaskSpec]:
    """Task names (files in tasks/) or paths to task YAML files; none given means the default tasks."""
    if not names:
        specs = [s for s in all_specs() if s.default]
        if not specs:
            raise BenchError(f"{tasks_dir()}: no task YAML with 'default: true'")
        return specs
    by_name = None
    out = []
    for name in names:
        if name.endswith((".yaml", ".yml")) or os.sep in name:
            out.append(load_spec(name))
            continue
        if by_name is None:
            by_name = {s.name: s for s in all_specs()}
        if name not in by_name:
            raise BenchError(f"--tasks: unknown task '{name}' (known: {', '.join(sorted(by_name))}; or give a path to a task YAML)")
        out.append(by_name[name])
    _refuse_shared_names(out)
    return out


def _refuse_shared_names(specs: list[TaskSpec]) -> None:
    """Two tasks of one name (or of names that make one file) would keep one row and one report between them."""
    seen: dict[str, TaskSpec] = {}
    for spec in specs:
        if spec.name in seen:
            raise BenchError(f"--tasks: task '{spec.name}' given twice ({seen[spec.name].yaml_path} and "
                             f"{spec.yaml_path}); expected each task once, under its own name")
        seen[spec.name] = spec
    clash = names.clashes(seen)
    if clash:
        raise BenchError(f"--tasks: tasks '{clash[0]}' and '{clash[1]}' share the same file name '{clash[2]}' for "
                         "their reports; rename one")


def load(spec: TaskSpec) -> RetrievalData:
    try:
        return _load(spec)
    except BenchError as e:
        raise BenchError(f"task '{spec.name}' ({spec.yaml_path}): {spec.as_written(str(e))}") from None
    except Unavailable as u:
        raise Unavailable(spec.as_written(u.reason), spec.as_written(u.fix)) from None


def _load(spec: TaskSpec) -> RetrievalData:
    path = spec.data_path
    if not path.exists():
        where = f" Get it from {spec.download}" if spec.download else ""
        raise Unavailable(f"task '{spec.name}': data file {path} not found.{where}",
                          f"download it to {path}, or set 'path' in {spec.yaml_path}")
    if spec.format == "beir":
        data = read_beir(path, spec.split, spec.name)
    elif spec.format == "leaflets":
        from bench.data import leaflets

        data = leaflets.task_data(path, spec.questions_path, spec.name)
    else:
        if spec.paragraphs:
            from bench.data.split import convert_split

            conv = convert_split(path, spec.paragraphs, pool=spec.pool == "all")
        else:
            conv = convert.convert_file(path, spec.format)
        data = RetrievalData(spec.name, conv.corpus, conv.queries, conv.qrels, conv.rejects)
    if not data.corpus:
        raise BenchError(f"{path}: empty corpus (no documents)")
    if not data.qrels:
        raise BenchError(f"{path}: no questions with a relevant document")
    return data


def _read_jsonl(path: Path, what: str) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    first_seen: dict[str, int] = {}
    # Ids and texts are data: errors name the line and the field, never the value.
    for lineno, row in convert.jsonl_objects(path, "'_id' and 'text'"):
        rid = row.get("_id")
        if not isinstance(rid, str) or not rid:
            raise BenchError(f"{path}:{lineno}: field '_id' is missing or not a non-empty string")
        if not isinstance(row.get("text"), str) or not row["text"].strip():
            raise BenchError(f"{path}:{lineno}: field 'text' of the {what} is missing or empty")
        if rid in rows:
            raise BenchError(f"{path}:{lineno}: field '_id' repeats the {what} id of line {first_seen[rid]}")
        title = row.get("title")
        if title is not None and not isinstance(title, str):
            raise BenchError(f"{path}:{lineno}: field 'title' is not a string")
        kind = row.get("kind")
        if kind is not None and kind not in KINDS:
            raise BenchError(f"{path}:{lineno}: field 'kind' is not one of {', '.join(KINDS)}")
        # A kind only where given: a corpus row stays {title, text}, which the task's fingerprint hashes.
        rows[rid] = {"title": convert.nfc(title or ""), "text": convert.nfc(row["text"]), **({"kind": kind} if kind else {})}
        first_seen[rid] = lineno
    return rows


def read_beir(folder: Path, split: str = "test", name: str = "") -> RetrievalData:
    corpus = _read_jsonl(folder / "corpus.jsonl", "document")
    if not corpus:
        raise BenchError(f"{folder / 'corpus.jsonl'}: empty corpus (expected one JSON document per line)")
    query_rows = _read_jsonl(folder / "queries.jsonl", "query")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in convert.lines(convert.read_text(qrels_path)):
        cols = line.split("\t")
        if lineno == 1 and cols[0] == "query-id":
            continue
        if not line.strip():
            continue
        if len(cols) != 3:
            raise BenchError(f"{qrels_path}:{lineno}: expected 3 tab-separated columns query-id, corpus-id, score")
        qid, did, score = cols
        if qid not in query_rows:
            raise BenchError(f"{qrels_path}:{lineno}: column query-id names no query in queries.jsonl")
        if did not in corpus:
            raise BenchError(f"{qrels_path}:{lineno}: column corpus-id names no document in corpus.jsonl")
        if query_rows[qid].get("kind") == "unanswerable":
            raise BenchError(f"{qrels_path}:{lineno}: column query-id names a question of kind 'unanswerable' in "
                             "queries.jsonl, which has no relevant passage; drop the qrel or the kind")
        try:
            qrels.setdefault(qid, {})[did] = int(score)
        except ValueError:
            raise BenchError(f"{qrels_path}:{lineno}: column score is not an integer") from None
    # queries.jsonl may hold every split's queries; the qrels file picks this split's.
    queries = {k: v["text"] for k, v in query_rows.items() if k in qrels}
    unanswerable = {k: v["text"] for k, v in query_rows.items() if v.get("kind") == "unanswerable"}
    kinds = {k: v["kind"] for k, v in query_rows.items() if v.get("kind") and (k in qrels or k in unanswerable)}
    return RetrievalData(name or folder.name, corpus, queries, qrels, unanswerable=unanswerable, kinds=kinds)
