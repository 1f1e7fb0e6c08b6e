"""The synthetic micro-expression set, written in the exact on-disk layout of CASME II.

The generator is :mod:`kerasmer.data.synthetic.generate`; ``read_dataset("casme2", root)`` reads what it writes.
"""

from kerasmer.data.synthetic.generate import EXPRESSION_AUS, make_synthetic

__all__ = ["EXPRESSION_AUS", "make_synthetic"]
