"""The CLI tests reuse the training tests' tiny synthetic set."""

from tests.training.conftest import synthetic_df, synthetic_root  # noqa: F401
