"""Shared test configuration.

TensorFlow logging is quietened, and every test starts from the float32 policy
so a mixed-precision test cannot leak its policy into the next test.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """The notebooks (collected by nbmake) are full training runs: marked ``large``.

    ``pytest -m "not large"`` is the quick developer loop; plain ``pytest`` runs everything.
    """
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.large)


@pytest.fixture(autouse=True)
def _float32_policy():
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def mixed_policy():
    """Context helper: ``with mixed_policy("mixed_bfloat16"): ...``."""
    import contextlib

    @contextlib.contextmanager
    def _ctx(name):
        keras.config.set_dtype_policy(name)
        try:
            yield
        finally:
            keras.config.set_dtype_policy("float32")

    return _ctx
