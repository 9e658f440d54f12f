"""The Dask worker plugin of batch jobs (its own module: it imports ``distributed`` at load)."""

from __future__ import annotations

from distributed import WorkerPlugin

__all__ = ["JobThreads"]


class JobThreads(WorkerPlugin):
    """Dask worker plugin: the job's cores as the worker's thread count (``OMP_NUM_THREADS``
    and PyTorch's intra-op threads), which Dask's nanny otherwise sets to 1. An in-process
    engine (the ML potential) then computes each relaxation on all of the job's cores; a
    CP2K run sets its own OpenMP threads from its launch profile."""

    name = "halex-job-threads"

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def setup(self, worker) -> None:
        import os

        os.environ["OMP_NUM_THREADS"] = str(self.threads)
        try:
            import torch
        except ImportError:
            return
        torch.set_num_threads(self.threads)
