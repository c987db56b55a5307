"""A registry entry as models.yaml declares it: ModelEntry, its `train:` block and its `unseen_topics:` verdict.

Each field says what it expects; bench.declared turns a bad value into the one-line error the user sees. What needs
the other entries (a stage, a trained base) is the registry's to check (bench.models.registry)."""

from __future__ import annotations

import re
from dataclasses import asdict, field
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator
from pydantic.dataclasses import dataclass

from bench.data.split import HOLD_OUT
from bench.declared import REQUIRED_TEXT, STRICT, NonBlank, expect, one_of, wrong
from bench.models import loaders, recipe_table

# onnx-opt (fused fp32) is built on the way to int8 but measured only when asked for: on 2 AVX2 cores it was
# within 10% of onnx-fp32 for multilingual-e5-small, so by default it only lengthens the run.
NOT_BY_DEFAULT = ("onnx-opt",)
FAMILIES = ("lexical", "dense", "static", "student", "pipeline", "cross-encoder")
# Options the benchmark run reads, not the model: max_questions scores an entry on a seeded sample of each task's
# questions, for candidates too slow to score every question on a small CPU (a cross-encoder pipeline).
RUN_OPTIONS = ("max_questions",)
FUSIONS = {"hybrid": ("rrf", "score"), "rerank": ("rrf",)}  # rerank: none means the second stage's order alone
# unseen_topics.verdict: "kept": at most 0.01 nDCG@10 below its base on the topic-disjoint task (or above it);
# "lost": more than 0.01 below; "not judged": no held-out build of its recipe scored there yet.
UNSEEN_VERDICTS = ("kept", "lost", "not judged")
EXCLUDED_VERDICTS = ("lost", "not judged")

_STAGE = re.compile(r"^(?P<name>.+?)(?:\s*\[(?P<variant>[\w.+-]+)\])?$")
_SADEDEGEL_PIN = re.compile(r"^sadedegel==[0-9][0-9A-Za-z.]*$")
_POSITIVE = " must be a positive integer, got {value!r}"
_RECIPE = " is {value!r}, expected one of " + ", ".join(recipe_table.RECIPES)
_VERDICT = " must be one of " + ", ".join(UNSEEN_VERDICTS)
PositiveInt = Annotated[int, Field(gt=0)]


def stage_parts(spec: str) -> tuple[str, str | None]:
    """(entry name, variant or None) of a stage: "name" or "name [variant]", as models.yaml and result records
    write stages."""
    m = _STAGE.match(str(spec).strip())
    return (m.group("name").strip(), m.group("variant")) if m else ("", None)  # a blank spec names no entry


def stage_name(spec: str) -> str:
    return stage_parts(spec)[0]


@dataclass(config=STRICT)
class TrainBlock:
    """A trained entry's `train:` block: built by `python -m bench train NAME` into the cache (see bench.train)."""

    recipe: Annotated[str, one_of(recipe_table.RECIPES, _RECIPE)] = expect(_RECIPE)
    base: NonBlank = expect(" is missing or not a registry entry name")
    data: Annotated[list[NonBlank], Field(min_length=1)] = expect(" must be a non-empty list of file paths or globs")
    params: dict = expect(" must be a mapping", {})
    hold_out: Annotated[str | None, one_of(HOLD_OUT, " is {value!r}, expected one of " + ", ".join(HOLD_OUT) +
                                           " (the thquad era the build never reads)")] = None
    seed: int = expect(" must be an integer, got {value!r}", 0)


@dataclass(config=STRICT)
class UnseenTopics:
    """How a trained entry did on topics it never saw. "lost" and "not judged" keep the entry out of recommendations
    (registry.lost_on_unseen_topics); `by` names the held-out entry judged in its place."""

    verdict: Annotated[str, one_of(UNSEEN_VERDICTS, _VERDICT)] = expect(_VERDICT)
    by: str = expect(" must be a string", None)
    note: str = expect(" must be a string", None)


@dataclass(config=STRICT)
class ModelEntry:
    name: NonBlank = expect(REQUIRED_TEXT)
    kind: NonBlank = expect(REQUIRED_TEXT)
    loader: NonBlank = expect(REQUIRED_TEXT)
    source: NonBlank = expect(REQUIRED_TEXT)
    query_prefix: str = expect(" must be a string", "")
    passage_prefix: str = expect(" must be a string", "")
    max_seq_length: PositiveInt | None = expect(_POSITIVE, None)
    install: str = expect(" must be a string", "")
    notes: dict = expect(" must be a mapping", {})
    options: dict = expect(" must be a mapping", {})
    variants: list[str] = field(default_factory=list)
    stages: list = field(default_factory=list)  # pipelines: registry names, optionally "name [variant]"
    base_dir: str = "."
    stage_entries: list = field(default_factory=list, repr=False)  # resolved (ModelEntry, variant) pairs
    train: dict = field(default_factory=dict)  # trained entries: a TrainBlock as written; see bench.train
    family: str = ""  # lexical | dense | static | student | pipeline | cross-encoder; derived when not given
    # Trained entries: an UnseenTopics as written ({} when not judged at all).
    unseen_topics: dict = field(default_factory=dict)
    # Report labels, never a registry name in code: `short` names the entry in training.md's ablation (an entry with
    # one is a rung of it), `role` says what it is in students.md.
    short: str = expect(" must be a string", "")
    role: str = expect(" must be a string", "")

    def __post_init__(self):
        if not self.variants and self.kind != "pipeline":
            # Cross-encoders score pairs; only the model as loaded applies to them.
            self.variants = list(loaders.variants(self.loader)[:1] if self.kind == "cross-encoder" else
                                 [v for v in loaders.variants(self.loader) if v not in NOT_BY_DEFAULT])

    @field_validator("name")
    @classmethod
    def _one_line(cls, v):
        if any(c in v for c in "\n\r\u2028\u2029\x85"):  # it would break every table row it is in
            raise wrong("field 'name' holds a line break; expected a name on one line")
        return v

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v):
        if v not in loaders.kinds():
            raise wrong(f"field 'kind' is '{v}', expected one of {', '.join(sorted(loaders.kinds()))}")
        return v

    @field_validator("loader")
    @classmethod
    def _loader_of_kind(cls, v, info: ValidationInfo):
        kind = info.data.get("kind")
        if kind is not None and v not in loaders.kinds()[kind]:
            raise wrong(f"field 'loader' is '{v}', expected one of {', '.join(sorted(loaders.kinds()[kind]))} "
                        f"for kind '{kind}'")
        return v

    @field_validator("source")
    @classmethod
    def _pinned_wheel(cls, v, info: ValidationInfo):
        if info.data.get("loader") == "sadedegel" and not _SADEDEGEL_PIN.match(v.strip()):
            raise wrong(f"field 'source' must pin the wheel as 'sadedegel==VERSION', got '{v}'")
        return v

    @field_validator("options")
    @classmethod
    def _run_options(cls, v):
        mq = v.get("max_questions")
        if mq is not None and (not isinstance(mq, int) or isinstance(mq, bool) or mq <= 0):
            raise wrong(f"field 'options.max_questions' must be a positive integer, got {mq!r}")
        return v

    @field_validator("variants", mode="before")
    @classmethod
    def _loader_variants(cls, v, info: ValidationInfo):
        loader = info.data.get("loader")
        if v is None:
            return []
        if info.data.get("kind") == "pipeline" or loader not in loaders.LOADERS:
            # A pipeline's variant is named after its stages' (the registry refuses one a file gives).
            return v if isinstance(v, list) else []
        allowed = loaders.variants(loader)
        if not isinstance(v, list) or not v or any(x not in allowed for x in v):
            raise wrong(f"field 'variants' must be a non-empty list drawn from {', '.join(allowed)}, got {v!r}")
        return v

    @field_validator("stages", mode="before")
    @classmethod
    def _stage_list(cls, v):
        # Counted and resolved by the registry once every entry is read; anything but a list counts as no stages.
        return v if isinstance(v, list) else []

    @field_validator("unseen_topics", mode="before")
    @classmethod
    def _verdict(cls, v):
        # The registry checks it (UnseenTopics), after what says which entries may have one at all.
        return v if isinstance(v, dict) else {}

    @field_validator("family", mode="before")
    @classmethod
    def _known_family(cls, v):
        if v is None:
            return ""  # derived (registry.family)
        if v not in FAMILIES:
            raise wrong(f"field 'family' is '{v}', expected one of {', '.join(FAMILIES)}")
        return v

    @property
    def base_variant(self) -> str:
        return self.variants[0] if self.kind == "pipeline" else loaders.variants(self.loader)[0]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("base_dir")
        d.pop("stage_entries")
        return d


# What models.yaml may write in an entry (the rest the registry fills in).
FIELDS = {f for f in ModelEntry.__dataclass_fields__ if f not in ("base_dir", "stage_entries")}
REQUIRED = ("name", "kind", "loader", "source")
