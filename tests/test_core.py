"""Unit tests of the pure parts: profiles, parity, timing statistics, atomic writes, code digests."""

import shutil

import numpy as np
import pytest

from trtpipe import codehash
from trtpipe.errors import ProfileError
from trtpipe.io import atomic_path, write_json
from trtpipe.parity import compare
from trtpipe.spec import Profile, Variant, check_shapes_in_profile
from trtpipe.timing import Measurement, TimingSettings, measure, summarize


# --- profiles ----------------------------------------------------------------------------------
def test_profile_shapes_cover_batch_and_dynamic_axes(text_spec):
    shapes = Profile("small", 1, 2, 4).shapes(text_spec)
    assert shapes["input_ids"] == ((1, 4), (2, 8), (4, 16))
    fixed = Profile.static(2).shapes(text_spec, Variant.static(2))
    assert fixed["attention_mask"] == ((2, 8), (2, 8), (2, 8))


def test_shapes_outside_profile_are_refused_with_the_range(text_spec):
    ranges = Profile("small", 1, 2, 4).shapes(text_spec)
    check_shapes_in_profile({"input_ids": (4, 16), "attention_mask": (4, 16)}, ranges, "e.onnx", "small")
    with pytest.raises(ProfileError, match=r"shape 8x8 of input 'input_ids' is outside profile 'small' \(min 1x4, max 4x16\)"):
        check_shapes_in_profile({"input_ids": (8, 8), "attention_mask": (8, 8)}, ranges, "e.onnx", "small")
    with pytest.raises(ProfileError, match="no shape given for input 'attention_mask'"):
        check_shapes_in_profile({"input_ids": (1, 8)}, ranges, "e.onnx", "small")
    with pytest.raises(ProfileError, match="'pixels' is not an input of this engine"):
        check_shapes_in_profile({"pixels": (1, 8), "input_ids": (1, 8), "attention_mask": (1, 8)}, ranges, "e.onnx", "small")


# --- parity (Polygraphy's rule) ------------------------------------------------------------------
def test_element_fails_only_when_both_tolerances_are_exceeded():
    expected = np.array([1000.0, 1e-6, 0.5])
    within_rtol = expected + np.array([0.5, 0, 0])  # abs 0.5 > atol, rel 5e-4 < rtol
    assert compare(within_rtol, expected, atol=1e-4, rtol=1e-3)["passed"]
    within_atol = expected + np.array([0, 5e-5, 0])  # rel 50 > rtol, abs 5e-5 < atol
    assert compare(within_atol, expected, atol=1e-4, rtol=1e-3)["passed"]
    both = expected + np.array([0, 0, 0.01])  # abs 1e-2, rel 2e-2: both exceeded
    result = compare(both, expected, atol=1e-4, rtol=1e-3)
    assert not result["passed"] and result["max_abs_err"] == pytest.approx(0.01)
    assert result["mismatch_fraction"] == pytest.approx(1 / 3)


def test_shape_mismatch_and_nan_fail():
    assert not compare(np.zeros((2, 3)), np.zeros((3, 3)), 1, 1)["passed"]
    assert not compare(np.array([np.nan, 1.0]), np.array([0.0, 1.0]), 1, 1)["passed"]
    assert compare(np.array([3.0, 4.0]), np.array([6.0, 8.0]), 10, 10)["cosine"] == pytest.approx(1.0)


# --- timing ----------------------------------------------------------------------------------
class FakeClock:
    """Each call of a step advances time by the next duration; reading the clock is free."""

    def __init__(self, durations):
        self.now = 0.0
        self.durations = iter(durations)

    def __call__(self):
        return self.now

    def step(self):
        self.now += next(self.durations)


def test_measure_warms_up_by_time_then_needs_both_duration_and_count():
    clock = FakeClock([0.1] * 1000)
    settings = TimingSettings(warmup_s=0.25, min_duration_s=0.5, min_iterations=8)
    m = measure([clock.step], settings, clock=clock)
    assert m.warmup_iterations == 3  # 0.1, 0.2, 0.3 >= 0.25
    assert len(m.latencies_ms) == 8  # the count, not the 0.5 s, was the binding limit
    clock = FakeClock([0.1] * 1000)
    m = measure([clock.step], TimingSettings(warmup_s=0, min_duration_s=1.05, min_iterations=2), clock=clock)
    assert m.warmup_iterations == 1 and len(m.latencies_ms) == 11  # the duration was


def test_measure_rotates_input_sets():
    calls = []
    clock = FakeClock([0.1] * 100)
    steps = [lambda k=k: (calls.append(k), clock.step()) for k in range(3)]
    measure(steps, TimingSettings(warmup_s=0, min_duration_s=0, min_iterations=6), clock=clock)
    assert calls == [0, 0, 1, 2, 0, 1, 2]  # one warm-up call, then six timed from the first set


def test_summary_statistics():
    lat = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    stats = summarize(Measurement(lat, wall_s=0.025, warmup_iterations=1), batch=4, cv_threshold=0.025)
    assert stats["latency_ms_median"] == 3.0 and stats["latency_ms_min"] == 1.0 and stats["latency_ms_max"] == 10.0
    assert stats["latency_ms_p90"] == pytest.approx(np.percentile(lat, 90))
    assert stats["cv"] == pytest.approx(np.std(lat, ddof=1) / 4.0)
    assert stats["unstable"] is True
    assert stats["throughput_qps"] == pytest.approx(200.0) and stats["throughput_samples_s"] == pytest.approx(800.0)
    steady = summarize(Measurement(np.full(10, 2.0), 0.02, 1), batch=1, cv_threshold=0.025)
    assert steady["cv"] == 0.0 and steady["unstable"] is False


# --- atomic writes ---------------------------------------------------------------------------
def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out" / "artifact.onnx"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(target.parent.iterdir()) == []
    write_json(target.with_suffix(".json"), {"b": 1, "a": 2})
    assert target.with_suffix(".json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'


# --- code digests ----------------------------------------------------------------------------
def test_closure_follows_package_imports_including_lazy_ones():
    names = {p.name for p in codehash.closure("trtpipe.check")}
    assert {"check.py", "parity.py", "reference.py", "ort_session.py", "io.py"} <= names
    assert not names & {"report.py", "timing.py", "gpu.py", "onnxruntime.py", "tensorrt.py", "engine.py"}


def test_digest_changes_only_with_the_code_it_covers(tmp_path, monkeypatch):
    pkg = tmp_path / "trtpipe"
    shutil.copytree(codehash.PACKAGE_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codehash, "PACKAGE_DIR", pkg)
    codehash.closure.cache_clear()
    before = {m: codehash.digest(m) for m in ("trtpipe.simplify", "trtpipe.report.summary")}
    (pkg / "simplify.py").write_text((pkg / "simplify.py").read_text() + "\n# edited\n")
    codehash.closure.cache_clear()
    after = {m: codehash.digest(m) for m in ("trtpipe.simplify", "trtpipe.report.summary")}
    codehash.closure.cache_clear()
    assert before["trtpipe.simplify"] != after["trtpipe.simplify"]
    assert before["trtpipe.report.summary"] == after["trtpipe.report.summary"]
