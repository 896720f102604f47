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
