"""`bench search index` and `bench search query`."""

from __future__ import annotations

from pathlib import Path

from bench.cli.common import entry_variant, lookup, nonempty_question, registry_entries
from bench.models import encoders, registry
from bench.errors import BenchError


def _retriever(entries: dict, name: str, variant, models_path):
    """Any entry that ranks passages by itself; a cross-encoder only re-scores what another stage found."""
    entry = lookup(entries, name, "--model", models_path)
    if entry.kind == "cross-encoder":
        users = [f"'{e.name}'" for e in entries.values() if any(s.name == name for s, _ in e.stage_entries)]
        raise BenchError(f"--model: '{name}' is a cross-encoder, which only re-scores what a first stage found; index "
                         f"with a pipeline entry that ends in it ({', '.join(users) or f'none in {models_path} yet'}) "
                         "or pass it to `search query` as --rerank")
    return entry, entry_variant(entry, variant)


SEARCH_PROFILE = "search"  # the registry profile naming the model search falls back to without a recommendation


def search_fallback(entries: dict, models_path) -> tuple[str, str] | None:
    """(model, variant) of the registry's profile 'search'; None where the registry has none."""
    profile = registry.load_profiles(models_path).get(SEARCH_PROFILE)
    if profile is None:
        return None
    name, variant = profile.entries[0]
    return name, variant or entries[name].base_variant


def _search_index(args, index: Path) -> int:
    from bench import search

    folder = Path(args.target)
    search.check_index_path(index)
    search.source_files(folder)
    entries = registry_entries(args.models)
    name, variant = args.model, args.variant
    if not name:
        # An entry that lost to its base on unseen topics (or was never judged there) is never the default pick.
        names = set(entries) - set(registry.lost_on_unseen_topics(list(entries.values())))
        name, chosen, why = search.default_model(index, folder, Path(args.results), names, args.task,
                                                 args.budget_ms, search_fallback(entries, args.models))
        variant = variant or chosen
        print(f"model: {name} [{variant}] ({why})")
    entry, variant = _retriever(entries, name, variant, args.models)
    stats = search.build(folder, encoders.load(entry, variant), entry.name, variant, index, args.engine, args.address)
    print(f"indexed {stats['indexed']} files, reused {stats['reused']}, skipped {stats['skipped']}; "
          f"{stats['passages']} passages in {index}" + (f" (ANN index {stats['ann']['type']})" if stats["ann"] else ""))
    return 0


def _shortened(text: str, limit: int = 200) -> str:
    """A question echoed back in full would bury the answer under it when someone pastes a document."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else f"{one_line[:limit]}… ({len(text):,} characters)"


def _search_query(args, index: Path) -> int:
    import json

    from bench import answers, search

    nonempty_question(args.target, "search query")
    opened = search.store.open_store(index)
    manifest = opened.manifest
    entries = registry_entries(args.models)
    entry, variant = _retriever(entries, manifest["model"], manifest["variant"], args.models)
    reranker = encoders.load_stage(lookup(entries, args.rerank, "--rerank", args.models)) if args.rerank else None
    candidate = encoders.load(entry, variant)
    opened.warm()
    hits, ms = search.ask(opened, candidate, args.target, args.k, reranker)
    if args.rerank:  # a re-ranker's scores are on its own scale: the index model's threshold does not apply
        cal = answers.Calibration(None, None, f"no calibrated threshold for {manifest['model']} [{variant}] "
                                              f"re-ranked by {args.rerank}; passages are shown without a confidence check")
    else:
        cal = answers.calibration(Path(args.results), manifest["model"], variant, args.task)
    if args.json:
        print(json.dumps(answers.payload(hits, cal), ensure_ascii=False))
        return 0
    # Model loading and opening the index are one-off costs; the figure is what each further question costs.
    print(f"{manifest['model']} [{variant}]" + (f" -> {args.rerank}" if args.rerank else "") + f" · {ms:.1f} ms: "
          f"{_shortened(args.target)}")
    print("\n".join(answers.text_lines(hits, cal, search.describe)))
    return 0


def cmd_search(args) -> int:
    from bench import search

    index = Path(args.index) if args.index else search.default_index()
    return (_search_index if args.action == "index" else _search_query)(args, index)
