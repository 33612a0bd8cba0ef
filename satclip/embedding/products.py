"""An output as an embedding product, in the community's conventions (geoembeddings.org, 2026):

* a STAC Collection and Item (:func:`stac`) with the Embeddings extension v0.0.1 (``emb:type``,
  ``emb:dimensions``, ``data_type``, ``emb:quantization``, links ``emb:model`` and
  ``emb:source-data``, an asset keyed ``embeddings``), the Processing and Scientific extensions,
  written to the run state (``.<out>.satclip/stac/``: a Parquet folder must hold the dataset only);
* the ``emb`` key of a Parquet file's metadata (:func:`emb_fields`);
* the ``geoemb:``, ``proj:`` and ``spatial:`` attributes of a Zarr group (:func:`zarr_attributes`).

One deviation, stated wherever it shows: a location embedding (a vector per point of the Earth's
surface, computed from coordinates alone) is neither of the specifications' types, ``pixel`` (a
vector per image pixel) nor ``chip`` (a vector per image patch). The outputs say
``"location"``, the type the "Earth Embeddings as Products" paper proposes, rather than a type
that would be wrong; validators of v0.0.1 flag that one value and nothing else
(``tests/embedding/test_products.py``).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path

from .._version import __version__
from .stored import INT8_FORMULA

EMB_EXTENSION = "https://stac-extensions.github.io/embeddings/v0.0.1/schema.json"
PROCESSING_EXTENSION = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
SCIENTIFIC_EXTENSION = "https://stac-extensions.github.io/scientific/v1.0.0/schema.json"
LOCATION_TYPE = "location"
ORIGINAL_PAPER = {"doi": "10.48550/arXiv.2311.17179",
                 "citation": "Klemmer, K., Rolf, E., Robinson, C., Mackey, L., Russwurm, M. (2023). SatCLIP: Global, "
                             "General-Purpose Location Embeddings with Satellite Imagery. arXiv:2311.17179"}
ORIGINAL_CODE = "https://github.com/microsoft/satclip"
S2_100K = "https://github.com/microsoft/satclip#s2-100k-dataset"
BLUE_MARBLE = "https://visibleearth.nasa.gov/collection/1484/blue-marble"
MEDIA_TYPES = {"parquet": "application/vnd.apache.parquet", "zarr": "application/vnd+zarr",
               "npy": "application/x-npy", "cog": "image/tiff; application=geotiff; profile=cloud-optimized"}
ZARR_CONVENTIONS = [
    {"schema_url": "https://raw.githubusercontent.com/geo-embeddings/embeddings-zarr-convention/refs/tags/v1/schema.json",
     "spec_url": "https://github.com/geo-embeddings/embeddings-zarr-convention/blob/v1/README.md",
     "uuid": "61c12cc5-0e28-4056-999a-480cf3fb7e4c", "name": "geoemb:",
     "description": "Geoembeddings convention for geospatial embedding arrays with model provenance"},
    {"schema_url": "https://raw.githubusercontent.com/zarr-conventions/geo-proj/refs/tags/v1/schema.json",
     "spec_url": "https://github.com/zarr-conventions/geo-proj/blob/v1/README.md",
     "uuid": "f17cb550-5864-4468-aeb7-f3180cfb622f", "name": "proj:",
     "description": "Coordinate reference system information for geospatial data"},
    {"schema_url": "https://raw.githubusercontent.com/zarr-conventions/spatial/refs/tags/v1/schema.json",
     "spec_url": "https://github.com/zarr-conventions/spatial/blob/v1/README.md",
     "uuid": "689b58e2-cf7b-45e0-9fff-9cfc0883d6b4", "name": "spatial:",
     "description": "Spatial coordinate information"},
]
METRES_PER_DEGREE = 111_320.0  # along the equator
# The released checkpoints' file names (satclip-<backbone>-l<L>.ckpt) and their Hugging Face repos.
_RELEASED = re.compile(r"satclip-(resnet18|resnet50|vit16)-l(10|40)\.ckpt$", re.IGNORECASE)
_REPO_NAMES = {"resnet18": "ResNet18", "resnet50": "ResNet50", "vit16": "ViT16"}


def model_card(config: dict, origin: str | None) -> dict:
    """What the metadata says of the model: its name, where its weights came from (a URL where
    one is known), their licence, L. ``origin``: the checkpoint path or Hugging Face repo id
    given to ``satclip.load``, ``"bundled"`` for the default model, or None (unknown)."""
    L = config.get("legendre_polys")
    card = {"name": f"SatCLIP location encoder ({config.get('le_type')} L={L}, {config.get('pe_type')})",
            "legendre_polys": L, "embed_dim": config.get("embed_dim"), "origin": origin or "unknown"}
    if origin == "bundled":
        card.update(href=ORIGINAL_CODE, licence="MIT", training_data=BLUE_MARBLE,
                    title="the demonstration model bundled with the satclip package (Blue Marble imagery, "
                          "satclip/data/DEFAULT_MODEL.md), not a released SatCLIP model")
        return card
    m = _RELEASED.search(origin or "")
    repo = (f"microsoft/SatCLIP-{_REPO_NAMES[m.group(1).lower()]}-L{m.group(2)}" if m else
            origin if origin and re.fullmatch(r"[\w.-]+/[\w.-]+", origin) and not Path(origin).exists() else None)
    if repo:
        released = repo.lower().startswith("microsoft/satclip-")
        card.update(href=f"https://huggingface.co/{repo}", licence="MIT" if released else "other",
                    training_data=S2_100K if released else None, title=f"SatCLIP weights from {repo}")
    else:
        card.update(href=Path(origin).resolve().as_uri() if origin and Path(origin).exists() else ORIGINAL_CODE,
                    licence="other", training_data=None,
                    title="a checkpoint given by the user (its licence is the checkpoint's own)")
    return card


def source_card(source: dict) -> dict:
    """The points' description for the metadata: what they are, a link where they are a file,
    the ground sample distance where they are a grid."""
    kind = source.get("type")
    if kind == "grid":
        step = source["step"]
        return {"title": f"{step}-degree lat/lon grid of cell centres" + (", land cells only" if source.get("land_only")
                                                                         else ""),
                "gsd": step * METRES_PER_DEGREE, "grid": {"step_deg": step, "land_only": bool(source.get("land_only"))}}
    if kind == "healpix":
        nside = source["nside"]
        return {"title": f"HEALPix pixel centres, nside {nside} ({'nested' if source.get('nest') else 'ring'} order)",
                "gsd": math.sqrt(4 * math.pi / (12 * nside * nside)) * 6_371_008.8}
    if kind == "h3":
        return {"title": f"H3 cell centres, resolution {source['res']}"}
    if kind == "table":
        return {"title": f"the points of {Path(source['path']).name}", "href": Path(source["path"]).as_uri()}
    return {"title": f"{source.get('n', '?')} points given as an array" if kind == "array" else str(kind)}


def quantization(man: dict) -> dict | None:
    """``emb:quantization`` of an int8 output (per-point scales: their place is named in the link)."""
    if man.get("dtype") != "int8":
        return None
    where = {"parquet": "column embedding_scale", "zarr": "array embedding_scale", "npy": "scales.npy",
             "cog": "band embedding_scale"}.get(man.get("format"), "embedding_scale")
    return {"method": f"per-point symmetric absmax: {INT8_FORMULA}, one float32 scale per point ({where}); "
                      "scale = max|e| / 127, code = round half to even(e / scale)",
            "original_dtype": "float32", "quantized_dtype": "int8"}


def emb_fields(man: dict) -> dict:
    """The embedding facts every format carries (Parquet's ``emb`` key, the STAC fields)."""
    card = man.get("model_card") or model_card(man.get("model_config", {}), None)
    src = source_card(man.get("source", {}))
    out = {"emb:type": LOCATION_TYPE, "emb:dimensions": man["dim"], "data_type": man["dtype"],
           "emb:model": card.get("href"), "emb:model_name": card.get("name"), "emb:model_fingerprint": man.get("model"),
           "emb:model_licence": card.get("licence"), "emb:source": src["title"], "emb:precision": man.get("precision"),
           "emb:type_note": "a location embedding: one vector per point of the Earth's surface, computed from its "
                            "coordinates; neither 'pixel' nor 'chip' (the specifications' types)"}
    q = quantization(man)
    if q:
        out["emb:quantization"] = q
    return out


def zarr_attributes(man: dict, grid_shape) -> dict:
    """The group attributes of the ``geoemb:``, ``proj:`` and ``spatial:`` conventions (the last
    for a grid, whose array indices map to coordinates by an affine transform)."""
    card = man.get("model_card") or model_card(man.get("model_config", {}), None)
    src = source_card(man.get("source", {}))
    attrs = {"zarr_conventions": ZARR_CONVENTIONS[:2] + ([ZARR_CONVENTIONS[2]] if grid_shape else []),
             "geoemb:type": LOCATION_TYPE, "geoemb:dimensions": man["dim"], "geoemb:model": card.get("href"),
             "geoemb:source_data": [src.get("href") or card.get("training_data") or ORIGINAL_CODE],
             "geoemb:data_type": man["dtype"], "geoemb:build_version": f"satclip {__version__}",
             "geoemb:spatial_layout": "global", "proj:code": "EPSG:4326"}
    if src.get("gsd"):
        attrs["geoemb:gsd"] = src["gsd"]
    if man.get("dtype") == "int8":
        attrs["geoemb:quantization"] = {"method": "per_pixel_scale", "original_dtype": "float32",
                                        "quantized_dtype": "int8",
                                        "scale": {"type": "array", "array_name": "embedding_scale", "nodata": "NaN"}}
    if grid_shape:
        nlat, nlon = grid_shape
        step = 180.0 / nlat
        # rows from the south: row r's cell spans latitudes [-90 + r*step, -90 + (r+1)*step]
        attrs.update({"spatial:dimensions": ["lat", "lon"], "spatial:shape": [nlat, nlon],
                      "spatial:transform": [step, 0.0, -180.0, 0.0, step, -90.0],
                      "spatial:bbox": [-180.0, -90.0, 180.0, 90.0], "spatial:registration": "pixel"})
    return attrs


def _bbox(man: dict) -> list:
    boxes = [r["bbox"] for r in man.get("shards", {}).values() if r.get("bbox")]
    if not boxes:
        return [-180.0, -90.0, 180.0, 90.0]
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def stac(man: dict, out: Path, asset_href: str, created: str | None = None) -> tuple[dict, dict]:
    """``(collection, item)`` describing output ``out`` (its manifest ``man``, completed at
    ``created``, ISO 8601); ``asset_href`` locates the data from where the two files are written."""
    card = man.get("model_card") or model_card(man.get("model_config", {}), None)
    src = source_card(man.get("source", {}))
    fields = emb_fields(man)
    bbox = _bbox(man)
    w, s, e, n = bbox
    ident = f"satclip-{Path(out).name}-{(man.get('model') or '')[:12]}"
    created = created or datetime.now(timezone.utc).isoformat(timespec="seconds")
    media = MEDIA_TYPES.get(man["format"], "application/octet-stream")
    model_link = {"rel": "emb:model", "href": card["href"], "title": card["title"] + f" ({card['name']}; weights "
                  f"fingerprint sha256 {man.get('model')}; licence {card['licence']})"}
    source_link = {"rel": "emb:source-data", "href": src.get("href") or card.get("training_data") or ORIGINAL_CODE,
                   "title": src["title"] + ("" if src.get("href") else
                                            "; the coordinates are the input, this link is the imagery the encoder "
                                            "learned from")}
    collection = {
        "type": "Collection", "stac_version": "1.0.0", "id": ident,
        "stac_extensions": [EMB_EXTENSION, SCIENTIFIC_EXTENSION],
        "title": f"SatCLIP location embeddings: {src['title']}",
        "description": f"{man['dim']}-dimensional SatCLIP location embeddings ({card['name']}) of {src['title']}, "
                       f"stored as {man['dtype']} in {man['format']} by satclip {__version__}. emb:type is "
                       f"'{LOCATION_TYPE}': {fields['emb:type_note']}.",
        "license": card["licence"] if card["licence"] == "MIT" else "other",
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [[created, created]]}},
        "emb:type": LOCATION_TYPE, "emb:dimensions": man["dim"], "data_type": man["dtype"],
        "emb:fit_for_use": ["regression", "classification", "retrieval", "interpolation"],
        "sci:publications": [ORIGINAL_PAPER],
        "item_assets": {"embeddings": {"type": media, "roles": ["data"], "title": "embeddings"}},
        "links": [model_link, source_link, {"rel": "item", "href": "./item.json", "type": "application/geo+json"}],
    }
    if src.get("gsd"):
        collection["gsd"] = src["gsd"]
    props = {"datetime": created, "processing:datetime": created,
             "processing:software": {"satclip": __version__},
             "emb:runtime_parameters": {"precision": man.get("precision"), "legendre_polys": card.get("legendre_polys"),
                                        "harmonics_calculation": man.get("model_config", {}).get("harmonics_calculation"),
                                        "chunk_points": man.get("chunk_points"), "format": man.get("format"),
                                        "source": man.get("source")}}
    if fields.get("emb:quantization"):
        props["emb:quantization"] = fields["emb:quantization"]
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": ident, "collection": ident,
        "stac_extensions": [EMB_EXTENSION, PROCESSING_EXTENSION],
        "bbox": bbox,
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "properties": props,
        "assets": {"embeddings": {"href": asset_href, "type": media, "roles": ["data"],
                                  "title": f"{man['format']} embeddings ({man['dtype']})"}},
        "links": [{"rel": "collection", "href": "./collection.json", "type": "application/json"},
                  {"rel": "parent", "href": "./collection.json", "type": "application/json"}, source_link],
    }
    return collection, item


def write_stac(out, man: dict, created: str | None = None) -> Path:
    """Writes ``collection.json`` and ``item.json`` into the run state's ``stac/`` folder; returns it."""
    from .state import state_dir, write_json_atomic

    folder = state_dir(out) / "stac"
    folder.mkdir(exist_ok=True)
    collection, item = stac(man, Path(out), f"../../{Path(out).name}", created)
    write_json_atomic(folder / "collection.json", collection)
    write_json_atomic(folder / "item.json", item)
    return folder


def read_stac(out) -> tuple[dict, dict]:
    """The ``(collection, item)`` of an output (``satclip info OUT``)."""
    from .state import state_dir

    folder = state_dir(out) / "stac"
    if not (folder / "item.json").is_file():
        raise FileNotFoundError(f"{out} has no STAC metadata ({folder}): written when a run completes")
    return (json.loads((folder / "collection.json").read_text()), json.loads((folder / "item.json").read_text()))
