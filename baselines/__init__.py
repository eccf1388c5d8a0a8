"""Comparison methods, each trained and evaluated by the same engine as CAD-Net.

Importing this package registers every baseline (``benchmark.registry``): a new method is
one module here, with ``@register_method("name")`` on its class, plus its import below.
"""

from . import csrgan, cyclegan, hist, lomo_xqda, rain, reid, sing  # noqa: F401
