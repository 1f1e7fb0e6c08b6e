"""The bottom layer: helpers every other layer may import, importing nothing of kerasmer.

* :mod:`kerasmer.core.atomic`: the one atomic writer (files and directories).
* :mod:`kerasmer.core.precision`: the dtype policy (validate, resolve ``"auto"``, scope, record) and
  the bf16 Conv3D guard.
"""
