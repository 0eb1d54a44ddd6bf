"""The machine lock (trtpipe/machine.py): jobs work side by side under a shared hold, a timing waits to hold the
machine alone and keeps new work out while it measures. Real flock(2) locks between real processes."""

import fcntl
import multiprocessing
import os
import queue as queue_module
import time

import pytest

from trtpipe import gpu as gpu_module
from trtpipe import machine

FORK = multiprocessing.get_context("fork")  # children keep the patched lock directory and GPU list


@pytest.fixture(autouse=True)
def own_locks(monkeypatch, tmp_path):
    monkeypatch.setenv("TRTPIPE_GPU_LOCK_DIR", str(tmp_path))
    monkeypatch.delenv("TRTPIPE_TEST_DEVICE", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpu_module, "_gpus", lambda: [("0", "GPU-aaa")])


def _work(events, release):
    """Another job: works under a shared hold until told to stop."""
    with machine.working():
        events.put("working")
        release.get(timeout=60)
    events.put("done")


def _time(events):
    """Another job's timing: holds the machine alone for a moment."""
    with machine.working():
        events.put("loaded")
        with machine.alone():
            events.put("timing")
    events.put("timed")


def test_a_timing_waits_for_the_work_beside_it_and_work_waits_for_a_timing():
    events, release = FORK.Queue(), FORK.Queue()
    worker = FORK.Process(target=_work, args=(events, release))
    worker.start()
    assert events.get(timeout=30) == "working"
    timing_events = FORK.Queue()
    timing = FORK.Process(target=_time, args=(timing_events,))
    timing.start()
    assert timing_events.get(timeout=30) == "loaded"  # loading runs beside the other job's work
    with pytest.raises(queue_module.Empty):
        timing_events.get(timeout=1.5)  # the timing itself waits for that work
    release.put("stop")
    assert timing_events.get(timeout=30) == "timing"
    assert timing_events.get(timeout=30) == "timed"
    worker.join(timeout=30)
    timing.join(timeout=30)
    assert worker.exitcode == 0 and timing.exitcode == 0


def _stamped_work(events, release):
    """_work, its events stamped with the host's monotonic clock (one clock for every process)."""
    with machine.working():
        events.put((time.monotonic(), "working"))
        release.get(timeout=60)
    events.put((time.monotonic(), "done"))


def _stamped_timing(events, patience_s):
    with machine.working():
        with machine.alone(patience_s):
            events.put((time.monotonic(), "timing"))  # stamped while it holds the machine alone
    events.put((time.monotonic(), "timed"))


def _turnstile_closed() -> bool:
    fd = machine._open("turnstile.lock")
    try:
        if machine._try(fd, fcntl.LOCK_SH):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        return True
    finally:
        os.close(fd)


def _start_work_once_the_turnstile_is_closed(events):
    """New work that arrives after the timing has run out of patience: it waits for that event (the turnstile
    held exclusively), not for a number of seconds that a busy machine may not honour."""
    while not _turnstile_closed():
        time.sleep(0.01)
    events.put((time.monotonic(), "arrived"))
    with machine.working():
        events.put((time.monotonic(), "new work"))  # stamped while it holds the machine shared


def test_a_timing_that_waited_long_enough_stops_new_work_until_it_is_done():
    """Without the turnstile, jobs that keep overlapping starve a timing: new work would always get in first.
    Ordered by events, not by elapsed time: the newcomer comes once the turnstile is closed, and the events are
    ordered by when they happened (inside the locks), not by when the queue delivered them."""
    events, release = FORK.Queue(), FORK.Queue()
    worker = FORK.Process(target=_stamped_work, args=(events, release))
    timing = FORK.Process(target=_stamped_timing, args=(events, 0.3))
    newcomer = FORK.Process(target=_start_work_once_the_turnstile_is_closed, args=(events,))
    try:
        worker.start()
        assert events.get(timeout=60)[1] == "working"
        timing.start()
        newcomer.start()
        assert events.get(timeout=60)[1] == "arrived"  # the timing's patience ran out: the turnstile is closed
        with pytest.raises(queue_module.Empty):
            events.get(timeout=3)  # the timing waits for the running work; the newcomer waits behind the timing
        release.put("stop")
        seen = [name for _, name in sorted(events.get(timeout=60) for _ in range(4))]
    finally:
        for p in (worker, timing, newcomer):
            p.kill()
    assert seen.index("timing") < seen.index("new work") and "done" in seen


def _start_work(events):
    with machine.working():
        events.put("working")


def test_new_work_waits_while_this_process_times_and_its_own_hold_is_kept_after():
    events = FORK.Queue()
    with machine.working():  # this process's own shared hold is converted, not waited on
        with machine.alone() as waited:
            assert waited == 0.0
            newcomer = FORK.Process(target=_start_work, args=(events,))
            newcomer.start()
            with pytest.raises(queue_module.Empty):
                events.get(timeout=1.5)  # a job starting during the timing waits
        assert events.get(timeout=30) == "working"  # and starts once the timing is over, beside our shared hold
        newcomer.join(timeout=30)


def _gpu_build(events):
    """A build that times kernels (TensorRT, ONNX Runtime on the GPU): works shared, claims the GPU exclusively."""
    with machine.working():
        events.put("build working")
        with gpu_module.claim_gpu(poll_s=0.05):
            events.put("built")


def _benchmark(events, go):
    """A benchmark: loads under a shared GPU claim, then times with the machine and the GPU to itself."""
    with machine.working(), gpu_module.claim_gpu(shared=True):
        events.put("loaded")
        go.get(timeout=60)
        with machine.alone():
            events.put(f"timing, GPU claim shared afterwards: {machine._HOLD['gpu_shared'] == 1}")
    events.put("timed")


def test_a_timing_lets_go_of_its_shared_gpu_claim_while_it_waits():
    """A benchmark holds the GPU shared while loading; a GPU build that waits for that GPU holds the machine shared.
    Were the benchmark to keep its GPU claim while waiting for the machine, each would wait on the other for ever."""
    events, go = FORK.Queue(), FORK.Queue()
    benchmark = FORK.Process(target=_benchmark, args=(events, go))
    build = FORK.Process(target=_gpu_build, args=(events,))
    seen = []
    try:
        benchmark.start()
        seen.append(events.get(timeout=30))
        build.start()
        seen.append(events.get(timeout=30))
        go.put("time now")
        while "timed" not in seen:
            seen.append(events.get(timeout=30))
    except queue_module.Empty:
        pytest.fail(f"deadlock: after {seen} nothing happened for 30 s")
    finally:
        benchmark.kill()
        build.kill()
    # the build got the GPU while the benchmark waited for the machine
    assert seen == ["loaded", "build working", "built", "timing, GPU claim shared afterwards: True", "timed"]


def _benchmark_on_the_shared_gpu(events, go, name):
    import time

    with machine.working(), gpu_module.claim_gpu(shared=True):
        events.put(f"{name} loaded")
        go.get(timeout=60)
        with machine.alone(patience_s=0.1):
            time.sleep(0.5)  # the other one now waits for the machine with the turnstile closed
        events.put(f"{name} timed")


class _ConvertingFlock:
    """fcntl as flock(2) allows it at worst: "Converting a lock (shared to exclusive, or vice versa) is not guaranteed
    to be atomic: the existing lock is first removed, and then a new lock is established. Between these two steps, a
    pending lock request by another process may be granted." Here every blocking request takes that gap."""

    LOCK_SH, LOCK_EX, LOCK_UN, LOCK_NB = fcntl.LOCK_SH, fcntl.LOCK_EX, fcntl.LOCK_UN, fcntl.LOCK_NB

    @staticmethod
    def flock(fd, operation):
        import time

        if operation in (fcntl.LOCK_SH, fcntl.LOCK_EX):
            fcntl.flock(fd, fcntl.LOCK_UN)
            time.sleep(0.2)
        fcntl.flock(fd, operation)


def test_two_timings_on_one_gpu_follow_each_other(monkeypatch):
    """The first timing hands the machine to the second, which takes the GPU next: the first must let go of its GPU
    claim before it waits for the host again, or each waits on the other for ever."""
    monkeypatch.setattr(machine, "fcntl", _ConvertingFlock)
    events, go = FORK.Queue(), FORK.Queue()
    jobs = [FORK.Process(target=_benchmark_on_the_shared_gpu, args=(events, go, name)) for name in ("a", "b")]
    seen = []
    try:
        for job in jobs:
            job.start()
        seen += [events.get(timeout=30) for _ in jobs]
        for _ in jobs:
            go.put("time now")
        seen += [events.get(timeout=30) for _ in jobs]
    except queue_module.Empty:
        pytest.fail(f"deadlock: after {seen} nothing happened for 30 s")
    finally:
        for job in jobs:
            job.kill()
    assert sorted(seen) == ["a loaded", "a timed", "b loaded", "b timed"]


def test_a_job_uses_the_cores_snakemake_gave_it(monkeypatch):
    """Snakemake puts a job's `threads` in OMP_NUM_THREADS; outside a workflow a command owns every core it may run on."""
    allowed = len(machine.os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert machine.job_cores() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", str(allowed + 7))
    assert machine.job_cores() == allowed
    for unset in ("", "all"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        assert machine.job_cores() == allowed
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert machine.job_cores() == allowed


# --- timings beside confined work (scheduling.timing_cores, passed to every job as TRTPIPE_TIMING_CORES) --------
def _confined_work(events, release, confined):
    """Another job: confined off the timing cores (or not), works until told to stop."""
    with machine.working(confined):
        events.put(("working", sorted(machine.os.sched_getaffinity(0))))
        release.get(timeout=60)
    events.put(("done", None))


def _gpu_timing(events):
    """A GPU benchmark: loads under a shared GPU claim, then times on its GPU."""
    with machine.working(), gpu_module.claim_gpu(shared=True):
        events.put(("loaded", None))
        with machine.alone(gpu=True):
            events.put(("timing", sorted(machine.os.sched_getaffinity(0))))
    events.put(("timed", None))


def _start(target, *args):
    events = FORK.Queue()
    proc = FORK.Process(target=target, args=(events, *args))
    proc.start()
    return proc, events


def _needs_two_cores():
    if len(machine.os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores: one kept for timings, one for the rest")


@pytest.mark.parametrize("kept", [1, 0])
def test_a_gpu_timing_runs_beside_confined_work_on_the_cores_kept_for_it(monkeypatch, kept):
    """With a core kept for GPU timings, other work runs off it and a GPU timing need not wait for that work; with
    none kept, the timing waits for the machine to be quiet, as before."""
    _needs_two_cores()
    cores = sorted(machine.os.sched_getaffinity(0))
    monkeypatch.setenv("TRTPIPE_TIMING_CORES", str(kept))
    release = FORK.Queue()
    worker, work_events = _start(_confined_work, release, True)
    assert work_events.get(timeout=30) == ("working", cores[:-1] if kept else cores)
    timing, timing_events = _start(_gpu_timing)
    try:
        assert timing_events.get(timeout=30) == ("loaded", None)
        if kept:
            assert timing_events.get(timeout=30) == ("timing", cores[-1:])  # beside the work, on the kept core
            assert timing_events.get(timeout=30) == ("timed", None)
            assert work_events.empty()  # the work was still running all along
        else:
            with pytest.raises(queue_module.Empty):
                timing_events.get(timeout=1.5)
        release.put("stop")
        assert work_events.get(timeout=30) == ("done", None)
        if not kept:
            assert timing_events.get(timeout=30) == ("timing", cores)
            assert timing_events.get(timeout=30) == ("timed", None)
    finally:
        for proc in (worker, timing):
            proc.join(timeout=30)
            proc.kill()
    assert worker.exitcode == 0 and timing.exitcode == 0


def test_a_gpu_timing_waits_for_work_that_may_run_on_every_core(monkeypatch):
    """Work that is not confined (a CPU benchmark loading, a command run by hand) may use the kept cores: a GPU
    timing waits for it."""
    _needs_two_cores()
    monkeypatch.setenv("TRTPIPE_TIMING_CORES", "1")
    release = FORK.Queue()
    worker, work_events = _start(_confined_work, release, False)
    assert work_events.get(timeout=30)[0] == "working"
    timing, timing_events = _start(_gpu_timing)
    try:
        assert timing_events.get(timeout=30) == ("loaded", None)
        with pytest.raises(queue_module.Empty):
            timing_events.get(timeout=1.5)
        release.put("stop")
        assert work_events.get(timeout=30) == ("done", None)
        assert timing_events.get(timeout=30)[0] == "timing"
        assert timing_events.get(timeout=30) == ("timed", None)
    finally:
        for proc in (worker, timing):
            proc.join(timeout=30)
            proc.kill()


def test_a_cpu_timing_still_waits_for_confined_work(monkeypatch):
    _needs_two_cores()
    monkeypatch.setenv("TRTPIPE_TIMING_CORES", "1")
    release = FORK.Queue()
    worker, work_events = _start(_confined_work, release, True)
    assert work_events.get(timeout=30)[0] == "working"
    timing_events = FORK.Queue()
    timing = FORK.Process(target=_time, args=(timing_events,))
    timing.start()
    try:
        assert timing_events.get(timeout=30) == "loaded"
        with pytest.raises(queue_module.Empty):
            timing_events.get(timeout=1.5)
        release.put("stop")
        assert timing_events.get(timeout=30) == "timing"
    finally:
        for proc in (worker, timing):
            proc.join(timeout=30)
            proc.kill()


def test_a_gpu_timing_waits_for_a_job_that_claimed_its_gpu(monkeypatch):
    """Work that claims the GPU (an ONNX Runtime CUDA build, another benchmark loading) still keeps a timing off it;
    only a confined compile uses the GPU without a claim."""
    _needs_two_cores()
    monkeypatch.setenv("TRTPIPE_TIMING_CORES", "1")
    fd = machine.os.open(machine.lock_dir() / "GPU-aaa.lock", machine.os.O_RDWR | machine.os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_SH)  # what claim_gpu(shared=True) holds for such work
    timing, timing_events = _start(_gpu_timing)
    try:
        assert timing_events.get(timeout=30) == ("loaded", None)
        with pytest.raises(queue_module.Empty):
            timing_events.get(timeout=1.5)
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert timing_events.get(timeout=30)[0] == "timing"
    finally:
        machine.os.close(fd)
        timing.join(timeout=30)
        timing.kill()


def test_a_side_claim_picks_a_gpu_and_holds_no_lock(monkeypatch):
    with gpu_module.claim_gpu(side=True) as index:
        assert index == "0" and machine.os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-aaa"
        fd = machine.os.open(machine.lock_dir() / "GPU-aaa.lock", machine.os.O_RDWR | machine.os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a timing could take this GPU right now
        finally:
            machine.os.close(fd)
    assert "CUDA_VISIBLE_DEVICES" not in machine.os.environ
