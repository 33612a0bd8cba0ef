"""The op layer: ``torch.ops.satclip.*`` schemas (:mod:`.schemas`), fake kernels (:mod:`.fake`),
autograd formulas (:mod:`.autograd`), the pure-PyTorch twins registered as every op's fallback
(:mod:`.reference`) and the loading of the compiled kernels ``satclip/_C.so`` (:mod:`.extension`).

Imports nothing from the rest of the package (only torch); everything above builds on it.
"""

from . import schemas  # noqa: F401  first: the compiled library registers kernels for these schemas
from . import autograd, fake  # noqa: F401
from .extension import backend_info, extension_loaded, has_kernel
from .reference import PRECISIONS, degree_order
from .schemas import SCHEMAS, ops

__all__ = ["PRECISIONS", "SCHEMAS", "backend_info", "degree_order", "extension_loaded", "has_kernel", "ops"]
