"""Root pytest configuration, loaded for tests/ and notebooks/ alike.

Notebooks executed by nbmake inherit this environment: KERASMER_SMALL=1 makes
them run with small settings in CI.
"""

import os

os.environ.setdefault("KERASMER_SMALL", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
