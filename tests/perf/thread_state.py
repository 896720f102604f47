"""The restore_threads fixture of the tests/perf tests (import it into a test module;
a conftest.py here would shadow tests/conftest.py)."""
import pytest


@pytest.fixture
def restore_threads():
    """tune_process changes process-wide state (BLAS threads, npsnn's workers): put the
    test process back as it was."""
    from threadpoolctl import threadpool_info

    from npsnn import workers
    from npsnn.perf import runtime
    blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    before = workers.workers()
    yield
    runtime.set_threads(blas[0] if blas else 1)
    workers.set_workers(before)
