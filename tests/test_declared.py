"""The declared shapes (bench.declared): pydantic checks the fields, the user still reads one line naming the file,
the field and what it expects, and records rewrite byte for byte."""

import json
from pathlib import Path
from typing import Annotated

import pytest
from pydantic.dataclasses import dataclass, is_pydantic_dataclass

from bench.data.tasks import TaskSpec
from bench.declared import STRICT, Expect, NonBlank, complaint
from bench.errors import BenchError
from bench.measure import results
from bench.measure.results import ResultRecord
from bench.models.entry import ModelEntry, TrainBlock, UnseenTopics
from bench.models.registry import Profile, load_registry
from bench.train.runs import TrainingRun, read_runs


@dataclass(config=STRICT)
class Shape:
    name: Annotated[NonBlank, Expect(" is missing or not a non-empty string")]
    size: Annotated[int, Expect(" must be a whole number, got {value!r}")] = 0


def test_the_registry_tasks_records_and_runs_are_pydantic_models():
    for cls in (ModelEntry, TrainBlock, UnseenTopics, Profile, TaskSpec, ResultRecord, TrainingRun):
        assert is_pydantic_dataclass(cls), cls


def test_a_complaint_is_one_line_in_the_order_the_checks_were_written():
    assert complaint(Shape, {"name": "a", "size": 2}) == (Shape("a", 2), None)
    # A required field missing comes before an unknown field, which comes before any other value.
    assert complaint(Shape, {"size": True, "colour": 1}, required=("name",))[1] == \
        "field 'name' is missing or not a non-empty string"
    assert complaint(Shape, {"name": "a", "size": True, "colour": 1}, required=("name",))[1] == \
        "unknown field 'colour' (allowed: name, size)"
    assert complaint(Shape, {"name": " ", "size": "3"}, prefix="x.")[1] == \
        "field 'x.name' is missing or not a non-empty string"
    assert complaint(Shape, {"name": "a", "size": "3"})[1] == "field 'size' must be a whole number, got '3'"


def test_a_bad_registry_field_is_one_line_naming_file_entry_and_field(tmp_path):
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  - {name: m, kind: bi-encoder, loader: sentence-transformers, source: x,\n"
                      "     max_seq_length: true}\n", encoding="utf-8")
    with pytest.raises(BenchError) as e:
        load_registry(models)
    assert str(e.value) == f"{models}: models[0] 'm': field 'max_seq_length' must be a positive integer, got True"
    models.write_text("models:\n  - {name: m, kind: bi-encoder, loader: sentence-transformers,\n"
                      "     train: {recipe: mlm, base: b, data: [a], colour: red}}\n", encoding="utf-8")
    with pytest.raises(BenchError) as e:
        load_registry(models)
    assert str(e.value) == (f"{models}: models[0] 'm': unknown field 'train.colour' (allowed: base, data, hold_out, "
                            "params, recipe, seed)")


def test_a_record_rewrites_byte_for_byte_an_int_in_a_number_field_included(tmp_path):
    row = {**json.loads(json.dumps(dict(ResultRecord("t", "m", "v", "ok").__dict__))), "ndcg_at_10": 1,
           "latency_p50_ms": 3.10, "per_query_ndcg": {"q1": 1, "q2": 0.5}}
    path = tmp_path / "results.json"
    text = json.dumps([row], ensure_ascii=False, indent=1) + "\n"
    path.write_text(text, encoding="utf-8")
    results.write(results.read(path), tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text(encoding="utf-8") == text


def test_a_bool_is_no_number_in_a_record_or_a_training_run(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps([{"task": "t", "model": "m", "variant": "v", "status": "ok", "ndcg_at_10": True}]),
                    encoding="utf-8")
    with pytest.raises(BenchError, match=r"record \[0\] field 'ndcg_at_10': expected a number or null$"):
        results.read(path)
    runs = tmp_path / "training.json"
    runs.write_text(json.dumps({"m": {"steps": True}}), encoding="utf-8")
    with pytest.raises(BenchError, match=r"entry 'm' field 'steps': expected a number$"):
        read_runs(runs)
    runs.write_text(json.dumps({"m": {"steps": 3, "anything": "else"}}), encoding="utf-8")
    assert read_runs(runs) == {"m": {"steps": 3, "anything": "else"}}  # fields it does not compute with are kept
