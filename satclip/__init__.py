"""satclip: fast, faithful SatCLIP location encoders.

``import satclip; enc = satclip.load("satclip-vit16-l10.ckpt"); emb = enc(lonlat)`` with
``lonlat`` a ``[N, 2]`` tensor of (lon, lat) in degrees, lon first. The whole model (image side
too): ``model = satclip.load_model(ckpt)``; ``satclip.locate(model, images, gallery, k)``.

Public API only, each name imported when first used (``import satclip`` alone loads nothing,
not even torch, and changes nothing in the process; the first use registers the ``satclip``
ops and loads the compiled kernels). The layers below, each a subpackage (imports point down):
``cli`` -> ``imagery`` / ``training`` -> ``model`` / ``embedding`` / ``evaluation`` ->
``checkpoint`` -> ``nn`` -> ``functional`` -> ``options`` -> ``ops`` (schemas, fallbacks, the
compiled ``_C.so``).
"""

from ._version import __version__

# public name -> (module, attribute or None for the module itself)
_PUBLIC = {
    "backend_info": ("ops", "backend_info"),
    "extension_loaded": ("ops", "extension_loaded"),
    "functional": ("functional", None),
    "nn": ("nn", None),
    "options": ("options", None),
    "EncodeOptions": ("options", "EncodeOptions"),
    "EncodePlan": ("options", "EncodePlan"),
    "LocationEncoder": ("nn", "LocationEncoder"),
    "default_model": ("checkpoint", "default_model"),
    "load": ("checkpoint", "load"),
    "save": ("checkpoint", "save"),
    "from_torchgeo": ("checkpoint", "from_torchgeo"),
    "to_torchgeo": ("checkpoint", "to_torchgeo"),
    "embed": ("embedding", "embed"),
    # the image side: timm / rasterio, imported when first used
    "Gallery": ("imagery", "Gallery"),
    "load_model": ("imagery", "load_model"),
    "locate": ("imagery", "locate"),
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'satclip' has no attribute {name!r}")
    import importlib

    module, attr = _PUBLIC[name]
    mod = importlib.import_module(f".{module}", __name__)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
