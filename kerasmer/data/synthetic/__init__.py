"""Synthetic micro-expression sets, written in the exact on-disk layouts of CASME II, SAMM and SMIC-HS.

The generator is :mod:`kerasmer.data.synthetic.generate` (presets in :mod:`.presets`, drawing in
:mod:`.render`, layouts in :mod:`.layouts`); ``read_dataset("casme2", root)`` (or ``"samm"``,
``"smic"``) reads what it writes.
"""

from kerasmer.data.synthetic.generate import EXPRESSION_AUS, make_synthetic, make_synthetic_sets
from kerasmer.data.synthetic.presets import PRESETS, resolve_settings

__all__ = ["EXPRESSION_AUS", "PRESETS", "make_synthetic", "make_synthetic_sets", "resolve_settings"]
