"""Train on a machine that cannot hold the base model, and bring the result back small (bench's GPU machine).

That machine takes and returns at most 64 MiB a call, in files of 16 MiB at most, while multilingual-e5-small is
470 MB in fp32: 96M of its 118M parameters are the 250k-row embedding matrix. Every gradient recipe can freeze that
matrix (train.params.freeze_embeddings), so training changes only the 21M-parameter body and adds small heads:

- `prepare` (here): the root base cut to the pieces the training texts use (trim-vocab's slicing; those texts keep
  their token sequences, checked), in fp16; a registry naming it as the base, with the entries to train and their
  train blocks unchanged; the data files and evaluation tasks (the leakage check and the question exclusion need
  them), mirrored at the same relative paths so training.json names the files as it would here.
- `train` (there): `bench train` for each entry, then `pack`: each trained folder as per-row int8 deltas of the
  tensors training changed against that base, new tensors (a classifier head) in full, and its small files; one
  tar split into 16 MiB parts (the format: bench.train.deltas).
- `unpack` (here): full-vocabulary fp32 base + deltas -> the trained folders in the cache, with the base's
  tokenizer; training.json as written there, plus a `transfer` record (what was cut, the int8 rounding error).
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import os
import shutil
import sys
import tarfile
from pathlib import Path

from bench.data.retrieval import passages_of
from bench.errors import BenchError
from bench.names import slug
from bench.paths import cache_dir
from bench.train.deltas import BUNDLE_FILES, TOKENIZER_FILES, apply, bundles, fidelity, fp32_state, load_file_bytes, pack_one, \
    write_archive
CUT = {"min_count": 1, "keep_chars": True, "wordfreq_words": 0}


def _chains(models_path: Path, names: list[str]):
    from bench.models import recipe_table, registry
    from bench.train.plan import order

    by_name = {e.name: e for e in registry.load_registry(models_path)}
    todo = []
    for name in names:
        if name not in by_name or not by_name[name].train:
            raise BenchError(f"{models_path}: no trained entry named '{name}'")
        for e in order(by_name[name], by_name):
            if e not in todo:
                todo.append(e)
    roots = {e.train["base"] for e in todo if not by_name[e.train["base"]].train}
    if len(roots) != 1:
        raise BenchError(f"transfer: the entries start from more than one base ({', '.join(sorted(roots))}); "
                         "prepare one transfer per base")
    # merge averages two such models, so its embeddings stay the base's too (pack_one checks it)
    how = {e.name: recipe_table.recipe(e.train["recipe"]).transfer for e in todo}
    bad = [e.name for e in todo if how[e.name] != "merge" and (
        how[e.name] != "delta" or not (e.train.get("params") or {}).get("freeze_embeddings"))]
    if bad:
        raise BenchError(f"{models_path}: '{bad[0]}': transfer needs a gradient recipe with "
                         "params.freeze_embeddings: true (the delta carries the body, not the embedding matrix)")
    return by_name, todo, by_name[roots.pop()]


def training_texts(entries, by_name: dict, models_path: Path) -> list[str]:
    """Every text a recipe may tokenize, in every form it may take (bare, prefixed, title + text)."""
    from bench.train.corpus import base_prefixes, data_files, read_corpus

    out = set()
    for e in entries:
        qp, pp = base_prefixes(e, by_name)
        texts, conv = read_corpus(data_files(e, models_path))
        passages = passages_of(conv.corpus)[1] if conv else []
        bare = texts + passages + ([d["text"] for d in conv.corpus.values()] if conv else [])
        questions = list(conv.queries.values()) if conv else []
        out |= {t.strip() for t in bare + questions} | {pp + t for t in bare} | {qp + q for q in questions}
    return sorted(t for t in out if t)


def _mirror(src: Path, root: Path, tree: Path) -> Path:
    dest = tree / os.path.relpath(src.resolve(), root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dest)
    return dest


def prepare(models_path: str | Path, names: list[str], out: str | Path) -> dict:
    import yaml
    from safetensors.torch import load_file, save_file

    from bench.data import tasks
    from bench.train import leakage, trim
    from bench.train.corpus import base_folder, data_files

    models_path, out = Path(models_path).resolve(), Path(out)
    by_name, todo, root = _chains(models_path, names)
    source = base_folder(root)
    texts = training_texts(todo, by_name, models_path)
    shutil.rmtree(out, ignore_errors=True)
    base = out / "base"
    base.mkdir(parents=True)
    cut = trim.trim_vocab(source, texts, {}, {}, base, dict(CUT), 0)
    if cut["vocabulary_texts_changed"]:
        raise RuntimeError(f"{cut['vocabulary_texts_changed']} training texts tokenize differently after the cut")
    weights = base / "model.safetensors"
    state = load_file(str(weights))
    save_file({k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}, str(weights))
    # A Q4-dequantized base has few distinct values per block: xz halves it (60 -> 27 MB for e5-small).
    with open(weights, "rb") as src, lzma.open(str(weights) + ".xz", "wb", preset=6) as dst:
        shutil.copyfileobj(src, dst)
    weights.unlink()

    # Data and task files at the same paths relative to their common ancestor as here.
    specs = leakage.eval_specs()
    files = sorted({f for e in todo for f in data_files(e, models_path)})
    task_paths = [Path(s.yaml_path) for s in specs] + [s.data_path for s in specs] + [
        s.questions_path for s in specs if getattr(s, "questions", None)]
    anchor = Path(os.path.commonpath([str(p.resolve()) for p in files + task_paths + [models_path]]))
    tree = out / "tree"
    for p in files + task_paths:
        _mirror(p, anchor, tree)
    registry_copy = tree / os.path.relpath(models_path, anchor)
    keep = [root.name] + [e.name for e in todo]
    raw = yaml.safe_load(models_path.read_text(encoding="utf-8"))
    entries = [dict(m) for m in raw["models"] if m["name"] in keep]
    for m in entries:  # a verdict may name a held-out entry the copy leaves out; training never reads it
        m.pop("unseen_topics", None)
    for m in entries:
        if m["name"] == root.name:  # the cut base, loaded as a plain sentence-transformers folder
            m.update(loader="sentence-transformers", source=os.path.relpath(base.resolve(), registry_copy.parent),
                     install="")
            m.pop("variants", None)
    registry_copy.write_text(yaml.safe_dump({"models": entries}, allow_unicode=True, sort_keys=False),
                             encoding="utf-8")
    plan = {"models": os.path.relpath(registry_copy, out),
            "tasks": os.path.relpath(tree / os.path.relpath(tasks.tasks_dir().resolve(), anchor), out),
            "names": [e.name for e in todo], "pack": list(names), "base": root.name,
            "cut": {k: cut[k] for k in ("pieces_original", "pieces_kept", "vocabulary_texts",
                                        "vocabulary_texts_changed")} | {"dtype": "float16"}}
    (out / "plan.json").write_text(json.dumps(plan, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return plan


def train_and_pack(folder: str | Path, out: str | Path, max_steps: int | None = None,
                   budget_s: float | None = None, bundle_files: int = BUNDLE_FILES) -> dict:
    """There: build every planned entry, then pack them (each entry's failure is recorded; the rest go on). Past
    budget_s no further build starts, so what was built still comes back inside the machine's time limit."""
    import time

    start = time.monotonic()
    from bench.models import registry
    from bench.train import build

    folder, out = Path(folder).resolve(), Path(out)
    plan = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    weights = folder / "base" / "model.safetensors"
    if not weights.is_file():
        with lzma.open(str(weights) + ".xz") as src, open(weights, "wb") as dst:
            shutil.copyfileobj(src, dst)
    base_state = fp32_state(weights)  # shipped in fp16; trained (and diffed) in fp32
    os.environ["BENCH_TASKS_DIR"] = str(folder / plan["tasks"])
    models = folder / plan["models"]
    by_name = {e.name: e for e in registry.load_registry(models)}
    texts = training_texts([by_name[n] for n in plan["names"]], by_name, models)[:64]
    report = {"plan": plan, "built": {}, "failed": {}}
    staging = folder / "packed"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    # Only the entries asked for come back: a base rebuilt there on the way (same recipe and seed) is not
    # bit-identical to the one built here, and need not travel.
    for name in plan.get("pack", plan["names"]):
        if budget_s is not None and time.monotonic() - start > budget_s:
            report["failed"][name] = f"not started: past the {budget_s:.0f} s budget"
            continue
        try:
            t0 = time.monotonic()
            build.build(name, models, max_steps=max_steps)
            trained = registry.trained_dir(by_name[name])
            tensors, manifest = pack_one(trained, base_state)
            manifest["fidelity"] = fidelity(trained, tensors, manifest, base_state, texts)
            report["built"][name] = {"fidelity": manifest["fidelity"], "seconds": round(time.monotonic() - t0, 1),
                                     "parts": write_archive(tensors, manifest, staging / slug(name))}
            print(f"packed {name}: {manifest['fidelity']}", flush=True)
        except Exception as e:  # one failing recipe never loses the others
            report["failed"][name] = f"{type(e).__name__}: {e}"
            print(f"FAILED {name}: {e}", flush=True)
    report["bundles"] = bundles(report["built"], staging, bundle_files)
    # The first bundle comes back with this call; the others wait outside the carried folder (a later call that
    # does not carry it again finds it removed) for `cp BUNDLE/* $OUT/` while the machine is still warm.
    held = Path(os.environ.get("BENCH_TRANSFER_HOLD") or (cache_dir() / "transfer"))
    shutil.rmtree(held, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    for k, files in enumerate(report["bundles"] or [[]]):
        dest = out if k == 0 else held / f"bundle-{k + 1}"
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        for f in files:
            shutil.copy2(staging / f, dest / f)
        if k:
            print(f"bundle {k + 1} of {len(report['bundles'])}: fetch with `cp {dest}/* $OUT/`", flush=True)
    print(json.dumps({k: v for k, v in report.items() if k != "plan"}, indent=2, ensure_ascii=False), flush=True)
    return report


def unpack(parts_dir: str | Path, models_path: str | Path) -> list[str]:
    """Here: rebuild each packed model over the full-vocabulary base into the cache, complete or not at all."""
    from safetensors.torch import load_file, save_file

    from bench.models import registry
    from bench.provenance import sha256_file
    from bench.train import trim
    from bench.train.corpus import base_folder, data_files, display_path
    from bench.train.staging import publish, staged

    folder = Path(parts_dir)
    if not (folder / "report.json").is_file():
        raise BenchError(f"{folder}: no report.json (expected a folder that `transfer train` returned)")
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    models_path = Path(models_path)
    by_name = {e.name: e for e in registry.load_registry(models_path)}
    base_dir = Path(base_folder(by_name[report["plan"]["base"]]))
    base_state = load_file(str(base_dir / "model.safetensors"))
    done = []
    for name, info in report["built"].items():
        if not all((folder / p).is_file() for p in info["parts"]):
            print(f"{name}: not in {folder} (its parts come in another bundle)", flush=True)
            continue
        with tarfile.open(fileobj=io.BytesIO(b"".join((folder / p).read_bytes() for p in info["parts"])),
                          mode="r:xz") as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())
            tensors = load_file_bytes(tar.extractfile("tensors.safetensors").read())
        entry = by_name.get(name)
        if entry is None or not entry.train:
            raise BenchError(f"{models_path}: the pack holds '{name}', which is not a trained entry here")
        record = json.loads(manifest["files"]["training.json"])
        local = {display_path(f, entry.base_dir): sha256_file(f) for f in data_files(entry, models_path)}
        if sorted(local.values()) != sorted(record["data"].values()):
            raise BenchError(f"'{name}': the pack was trained on other data files than {models_path} names here "
                             "(sha256 differs)")
        final = registry.trained_dir(entry)
        with staged(final) as tmp:
            for name_, text in manifest["files"].items():
                (tmp / name_).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name_).write_text(text, encoding="utf-8")
            for f in TOKENIZER_FILES:
                if (base_dir / f).is_file():
                    shutil.copy2(base_dir / f, tmp / f)
            config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
            base_config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
            for key in ("vocab_size",) + trim.CONFIG_IDS:
                if key in base_config:
                    config[key] = base_config[key]
            (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
            save_file(apply(tensors, manifest, base_state), str(tmp / "model.safetensors"))
            record["transfer"] = {
                "how": "trained with the vocabulary cut to the training texts' pieces (fp16 base); the body's "
                       "changes shipped as per-row int8 deltas and added to the full-vocabulary fp32 base here",
                **report["plan"]["cut"], "int8_fidelity": manifest["fidelity"]}
            if "base_build" in record:  # the base was rebuilt there; this model now hangs off the one built here
                marker = registry.trained_dir(by_name[record["base"]]) / registry.TRAINED_MARKER
                record["transfer"]["base_rebuilt_there"] = True
                if marker.is_file():
                    record["base_build"] = registry.base_build_id(marker)
                else:
                    record.pop("base_build")
            publish(tmp, final, record)
        done.append(name)
        print(f"{name}: unpacked into {final}", flush=True)
    if done:  # as `bench train` does: reports/training.json keeps the run beside the results
        from bench.train import runs as run_store

        run_store.snapshot_beside(models_path)
    return done


def main(argv: list[str] | None = None) -> int:
    from bench.errors import one_line

    ap = argparse.ArgumentParser(prog="python -m bench.train.transfer", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="cut base + registry + data into a folder to send")
    p.add_argument("names", nargs="+")
    p.add_argument("--models", default="models.yaml")
    p.add_argument("--out", default=".remote")
    t = sub.add_parser("train", help="(there) build the planned entries and pack them into OUT")
    t.add_argument("folder")
    t.add_argument("--out", required=True)
    t.add_argument("--max-steps", type=int)
    t.add_argument("--budget-s", type=float, help="start no build after this many seconds")
    u = sub.add_parser("unpack", help="(here) rebuild the packed models into the cache")
    u.add_argument("parts")
    u.add_argument("--models", default="models.yaml")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "prepare":
            print(json.dumps(prepare(a.models, a.names, a.out), indent=2, ensure_ascii=False))
        elif a.cmd == "train":
            report = train_and_pack(a.folder, a.out, a.max_steps, a.budget_s)
            return 1 if report["failed"] else 0
        else:
            unpack(a.parts, a.models)
    except BenchError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
