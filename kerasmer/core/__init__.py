"""The bottom layer: helpers every other layer may import, importing nothing of kerasmer.

* :mod:`kerasmer.core.atomic`: the one atomic writer (files and directories).
"""
