"""npsnn.perf.runtime: how many threads a run uses, and why (flag > NPSNN_THREADS > the
user's OPENBLAS/OMP setting > one per usable CPU left free by other work)."""
import os
import subprocess
import sys

import pytest

from npsnn import workers
from thread_state import restore_threads  # noqa: F401  (a fixture)
from npsnn.perf import runtime


@pytest.mark.parametrize("busy, expect", [(0.0, 2), (0.3, 2), (0.6, 1), (1.0, 1), (1.9, 1),
                                          (5.0, 1)])
def test_auto_uses_the_cpus_other_work_leaves_free(busy, expect):
    n, why = runtime.choose_threads(environ={}, usable=2, busy=busy)
    assert n == expect
    assert why.startswith("auto: 2 usable CPUs") and f"{busy:.1f} busy" in why


def test_auto_without_a_load_measurement_uses_every_usable_cpu():
    assert runtime.choose_threads(environ={}, usable=8, busy=None) == \
        (8, "auto: 8 usable CPUs (load unknown)")


def test_flag_beats_environment_beats_blas_variables():
    env = {"NPSNN_THREADS": "3", "OPENBLAS_NUM_THREADS": "1"}
    assert runtime.choose_threads(2, environ=env, usable=2, busy=0.0) == (2, "--threads")
    assert runtime.choose_threads("auto", environ=env, usable=2, busy=0.0) == \
        (3, "NPSNN_THREADS")
    assert runtime.choose_threads(None, environ={"OPENBLAS_NUM_THREADS": "1"}, usable=2,
                                  busy=0.0) == (1, "OPENBLAS_NUM_THREADS")
    assert runtime.choose_threads(None, environ={"NPSNN_THREADS": "auto",
                                                 "OMP_NUM_THREADS": "1"},
                                  usable=2, busy=0.0) == (1, "OMP_NUM_THREADS")


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_thread_counts_are_refused_with_the_source_named(value):
    with pytest.raises(ValueError, match="NPSNN_THREADS must be a positive number"):
        runtime.choose_threads(None, environ={"NPSNN_THREADS": value}, usable=2, busy=0.0)
    with pytest.raises(ValueError, match="--threads must be a positive number"):
        runtime.choose_threads(value, environ={}, usable=2, busy=0.0)


def test_load_measurement_sees_a_busy_cpu():
    """A CPU-bound child on this process's CPUs shows up as about one busy CPU."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = runtime.busy_cpus(0.5)
    finally:
        hog.kill()
        hog.wait()
    if busy is None:
        pytest.skip("no /proc/stat here")
    assert busy >= 0.7                     # the hog (other work may add more)
    assert busy <= runtime.usable_cpus() + 0.1


def test_cpu_accounting_counts_our_cpus_and_niced_work():
    """/proc/stat fields: user nice system idle iowait irq softirq steal. Niced work takes
    time slices too, so it counts as busy."""
    stat = ("cpu  60 40 20 100 4 1 1 2 0 0\n"
            "cpu0 10 30 5 50 2 0 1 1 0 0\n"
            "cpu1 50 10 15 50 2 1 0 1 0 0\n"
            "intr 12345\n")
    assert runtime._cpu_jiffies({0}, stat) == (10 + 30 + 5 + 1 + 1, 99)
    assert runtime._cpu_jiffies({0, 1}, stat) == (47 + 77, 99 + 129)
    assert runtime._cpu_jiffies({5}, stat) is None


def test_usable_cpus_is_within_the_affinity_mask():
    assert 1 <= runtime.usable_cpus() <= len(os.sched_getaffinity(0))


def test_tune_process_sets_blas_and_workers_and_says_why(restore_threads, monkeypatch):
    from threadpoolctl import threadpool_info
    monkeypatch.setenv("NPSNN_THREADS", "1")
    tuning = runtime.tune_process()
    assert tuning["threads"] == 1 and tuning["threads_reason"] == "NPSNN_THREADS"
    assert workers.workers() == 1
    assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas")
    line = runtime.describe(tuning)
    assert line.startswith("threads: 1 (NPSNN_THREADS;") and "\n" not in line
    tuning = runtime.tune_process(threads=2)
    assert tuning["threads"] == 2 and workers.workers() == 2
    assert all(i["num_threads"] == 2 for i in threadpool_info() if i["user_api"] == "blas")


def test_bench_refuses_a_bad_thread_count_in_one_line():
    r = subprocess.run([sys.executable, "-m", "npsnn.perf.bench", "train-step", "--threads",
                        "0"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert r.returncode == 2
    assert "--threads must be a positive number of threads or 'auto'" in r.stderr
    assert "Traceback" not in r.stderr
