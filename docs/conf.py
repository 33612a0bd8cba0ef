"""Sphinx configuration of the satclip documentation (``make docs``).

Sphinx + MyST + autodoc rather than MkDocs: the API reference comes from the docstrings
(Google style, napoleon) of the installed package and the CLI reference from its argparse
parser (sphinx-argparse), both with cross-references checked at build time (``-W -n``).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import satclip  # noqa: E402  (the installed package, not the source tree: autodoc needs its _C)

project = "satclip"
author = "the satclip developers"
copyright = "2026, the satclip developers (MIT)"
release = version = satclip.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxarg.ext",
    "public_api_check",  # _ext/: every public name has a docstring, or the build fails
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "_generated"]  # _generated/: included by the pages, not pages

html_theme = "furo"
html_title = f"satclip {version}"
html_static_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_inherit_docstrings = False  # torch.nn.Module's own docstrings are not ours to publish
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# -n (nitpicky) checks every cross-reference; names of other libraries (no network here for
# intersphinx) and private names in signatures are not ours to resolve.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|np|numpy|pd|pandas|pa|pyarrow|gpd|geopandas|xr|xarray|zarr|ray|lightning|timm|pathlib|os|typing|collections|concurrent|datetime|argparse|dataclasses|enum|io)(\..*)?"),
    (r"py:.*", r"(Tensor|Path|Module|ndarray|DataFrame|GeoDataFrame|Callable|Iterator|Iterable|Sequence|Mapping|Any|Optional|Union|Literal|Self|PathLike|dtype|device|Generator)"),
    (r"py:.*", r"(int|float|str|bool|bytes|dict|list|tuple|None|object|callable|optional|default.*|array-like|type|function)"),
    (r"py:.*", r"(satclip|_).*\._.*"),  # private helpers that appear in signatures
    # the formats' internals that appear in OutputFormat's signatures (documented in their modules)
    (r"py:.*", r"(satclip\.embedding\.)?(durable|sources|stored|executors|formats\.base)\.\w+"),
    (r"py:.*", r"(Source|Chunk|Converted|WriterSpec|Writer|Block|SyncBatch|EmbeddingJob|Executor|RayExecutor|ModelConfig)"),
]


def _render_performance(app) -> None:
    """The performance page's tables, from benchmarks/results/*.json, on every build."""
    import render_performance

    out = HERE / "_generated" / "performance_tables.md"
    out.parent.mkdir(exist_ok=True)
    text = render_performance.render()
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


# The API reference: one entry per public name, listed from the modules' own __all__ (so a new
# public name appears without editing a page, and public_api_check fails the build if it has no
# docstring). A name public in two modules is described once and referenced from the other.
API_EXTRA = {"satclip.embedding": ["satclip.embedding.reader.iter_embeddings", "satclip.embedding.reader.read_embeddings",
                                   "satclip.embedding.reader.IncompleteOutput", "satclip.embedding.formats.names",
                                   "satclip.embedding.formats.get", "satclip.embedding.formats.register",
                                   "satclip.embedding.formats.OutputFormat", "satclip.embedding.formats.Capabilities",
                                   "satclip.embedding.ray_adapter.RayExecutor",
                                   "satclip.embedding.runner.EmbeddingInterrupted", "satclip.embedding.runner.DiskFull",
                                   "satclip.embedding.state.OutputLocked", "satclip.embedding.errors.SettingError"],
             "satclip": ["satclip.imagery.locate.Located", "satclip.model.satclip_model.SatCLIP",
                         "satclip.model.ModelConfig"]}


def _api_page() -> str:
    import importlib
    import inspect

    from public_api_check import PUBLIC_MODULES

    seen: dict[int, str] = {}
    parts = []
    for modname in PUBLIC_MODULES:
        mod = importlib.import_module(modname)
        parts += [f"## {modname}", "", "```{eval-rst}"]
        names = [f"{modname}.{n}" for n in sorted(getattr(mod, "__all__", ())) if not n.startswith("__")]
        for full in names + API_EXTRA.get(modname, []):
            owner, _, attr = full.rpartition(".")
            obj = getattr(importlib.import_module(owner), attr)
            if inspect.ismodule(obj):
                parts.append(f"``{full}``: the module, below." if f"{full}" in PUBLIC_MODULES else f"``{full}``")
                parts.append("")
                continue
            if id(obj) in seen:  # a target under this name too, pointing at the description
                kind = "class" if inspect.isclass(obj) else "function"
                parts.append(f".. py:{kind}:: {full}\n   :no-typesetting:\n")
                parts += [f"``{full}``: the same {kind} as :py:{kind[:5] if kind == 'class' else 'func'}:`{seen[id(obj)]}`.", ""]
                continue
            seen[id(obj)] = full
            if inspect.isclass(obj):
                parts.append(f".. autoclass:: {full}\n   :members:\n")
            elif callable(obj):
                parts.append(f".. autofunction:: {full}\n")
            else:
                parts.append(f".. autodata:: {full}\n   :annotation:\n")
        parts += ["```", ""]
    return "\n".join(parts)


def _render_api(app) -> None:
    out = HERE / "_generated" / "api.md"
    out.parent.mkdir(exist_ok=True)
    text = _api_page()
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


def setup(app):
    app.connect("builder-inited", _render_performance)
    app.connect("builder-inited", _render_api)
