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
