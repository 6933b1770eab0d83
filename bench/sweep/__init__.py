"""The sweep: a BenchConfig expands to cases; the runner loads the model as rarely as possible,
runs each case (warm-up, then repetitions inside the trackers) and journals every result."""
