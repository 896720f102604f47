"""npsnn.workers: element-wise kernels over disjoint chunks, serially or on threads."""
import threading

import pytest

from npsnn import workers


@pytest.fixture(params=[1, 2, 3])
def n_workers(request):
    workers.set_workers(request.param)
    yield request.param
    workers.set_workers(1)


@pytest.mark.parametrize("n, chunk", [(0, 4), (1, 4), (10, 3), (10, 10), (10, 100), (97, 8)])
def test_chunks_cover_the_range_once_in_order_per_thread(n_workers, n, chunk):
    seen, lock = [], threading.Lock()

    def kernel(a, b):
        assert 0 <= a < b <= n and b - a <= chunk
        with lock:
            seen.append((a, b))

    workers.for_each_chunk(kernel, n, chunk)
    covered = sorted(seen)
    assert [a for a, _ in covered] == list(range(0, n, chunk))
    assert all(b == a2 for (_, b), (a2, _) in zip(covered, covered[1:]))
    assert (covered[-1][1] if covered else 0) == n


@pytest.mark.parametrize("n, chunk", [(10, 3), (97, 8), (5, 100), (1000, 7), (3, 1)])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_even_plans_give_every_thread_the_same_share(n, chunk, threads):
    runs = workers.plan(n, chunk, threads, even=True)
    ranges = [r for run in runs for r in run]
    assert ranges[0][0] == 0 and ranges[-1][1] == n and len(runs) <= threads
    assert all(b == a2 for (_, b), (a2, _) in zip(ranges, ranges[1:]))
    assert max(b - a for a, b in ranges) <= chunk
    shares = [sum(b - a for a, b in run) for run in runs]
    assert max(shares) - min(shares) <= len(runs[0])      # at most one element per range
    plain = workers.plan(n, chunk, threads)
    assert [r for run in plain for r in run] == [(a, min(n, a + chunk))
                                                 for a in range(0, n, chunk)]


def test_threads_really_run_side_by_side(n_workers):
    """One chunk per worker, and every chunk waits for all the others: this only finishes
    if the chunks run at the same time, on n_workers different threads."""
    names = set()
    everyone = threading.Barrier(n_workers, timeout=20)

    def kernel(a, b):
        names.add(threading.current_thread().name)
        everyone.wait()

    workers.for_each_chunk(kernel, n_workers, 1)
    assert len(names) == n_workers


def test_a_failing_chunk_raises_after_all_helpers_finish(n_workers):
    done = []

    def kernel(a, b):
        if a == 5:
            raise ArithmeticError("chunk 5")
        done.append(a)

    with pytest.raises(ArithmeticError, match="chunk 5"):
        workers.for_each_chunk(kernel, 8, 1)
    assert 5 not in done


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_workers_refuses_bad_counts(bad):
    with pytest.raises(ValueError, match="positive int"):
        workers.set_workers(bad)
