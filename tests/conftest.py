import os

# Same environment as the Makefile gives: no hub, no OpenMP spin-waiting, no display.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import matplotlib
matplotlib.use("Agg")  # in this process only: kernels keep their inline backend

import pytest


@pytest.fixture(scope="session")
def executed():
    """executed(assignment) -> (solution notebook, namespace after running all its cells once)."""
    import nbtools
    cache = {}

    def get(assignment):
        if assignment not in cache:
            nb = nbtools.solution_nb(assignment)
            cache[assignment] = nb, nbtools.run_cells(nb)
        return cache[assignment]
    return get
