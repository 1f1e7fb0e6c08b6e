"""Shared tiny data for the training tests: one synthetic CASME II-format set per session."""

import pytest

TINY = dict(subjects=4, clips_per_class=2)
SHAPE = [32, 32, 3]  # LEARNet at 32x32 keeps every fold to a few seconds on a CPU


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    from kerasmer.data import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synthetic") / "casme2", seed=0, **TINY)


@pytest.fixture(scope="session")
def synthetic_df(synthetic_root):
    from kerasmer.data import read_dataset

    return read_dataset("casme2", synthetic_root)
