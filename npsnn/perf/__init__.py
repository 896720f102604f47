"""Performance: benchmarks (``python -m npsnn.perf.bench``) and the process-wide tuning the
commands apply (:mod:`npsnn.perf.runtime`)."""
