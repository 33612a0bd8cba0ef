"""HEALPix and H3 sources: every id's coordinates are the library's own cell centre (healpy
pix2ang, h3 cell_to_latlng), lon first, and map back to the id (ang2pix / latlng_to_cell), in
ring and nested HEALPix order."""

import numpy as np
import pytest

from satclip.embedding import sources as S


def _all(src):
    chunks = list(src.chunks())
    return (np.concatenate([c.ids for c in chunks]), np.concatenate([c.lon for c in chunks]),
            np.concatenate([c.lat for c in chunks]))


@pytest.mark.parametrize("nest", [False, True])
@pytest.mark.parametrize("nside", [1, 4, 16])
def test_healpix_ids_and_centres(nside, nest):
    healpy = pytest.importorskip("healpy")
    ids, lon, lat = _all(S.HealpixSource(nside, nest=nest, chunk_points=97))
    assert np.array_equal(ids, np.arange(12 * nside * nside))
    theta, phi = healpy.pix2ang(nside, ids, nest=nest)  # colatitude, longitude in radians
    assert np.allclose(lat, 90.0 - np.rad2deg(theta), atol=1e-12)
    assert np.allclose(np.mod(lon, 360.0), np.rad2deg(phi), atol=1e-12)
    assert lon.min() >= -180 and lon.max() <= 180
    assert np.array_equal(healpy.ang2pix(nside, lon, lat, nest=nest, lonlat=True), ids)
    if nside > 1:  # ring and nested numbering differ: the flag is not ignored
        other = _all(S.HealpixSource(nside, nest=not nest, chunk_points=97))
        assert not np.allclose(other[2], lat)


@pytest.mark.parametrize("res", [0, 1, 2])
def test_h3_ids_and_centres(res):
    h3 = pytest.importorskip("h3")
    ids, lon, lat = _all(S.H3Source(res, chunk_points=101))
    assert len(ids) == h3.get_num_cells(res) == len(set(ids.tolist()))
    for i in range(0, len(ids), max(1, len(ids) // 300)):
        cell = h3.int_to_str(int(ids[i].astype(np.uint64)))
        want_lat, want_lon = h3.cell_to_latlng(cell)
        assert (lon[i], lat[i]) == pytest.approx((want_lon, want_lat), abs=1e-12)
        assert h3.latlng_to_cell(lat[i], lon[i], res) == cell  # lat first in h3's API


@pytest.mark.parametrize("step", [0.1, 0.25, 0.05, 2.5, 0.3])
def test_grid_cell_centres_are_the_decimals_a_user_types(step):
    """Every centre of a lat/lon grid is the float nearest its decimal value (a 0.1-degree grid's
    top row is at 89.95, not 89.95000000000002), in the source and in the Zarr coordinates."""
    from decimal import Decimal

    g = S.GridSource(step)
    for centres, start in ((g.lat_centres, -90), (g.lon_centres, -180)):
        want = [float(Decimal(start) + (2 * i + 1) * Decimal(repr(step)) / 2) for i in range(len(centres))]
        assert np.array_equal(centres, np.array(want))
    _, lon, lat = g._cells(0, g.ncols * 2)
    assert set(np.round(lat, 10)) == set(lat) and lon[0] == float(Decimal(-180) + Decimal(repr(step)) / 2)
