"""The checksum a chunk's record keeps (npy, Zarr): XXH3-64 where xxhash is installed, CRC-32
otherwise; the record names its algorithm, so either (and the CRC-32 records of earlier versions)
is verified by the algorithm it was written with, and one changed byte is found by both."""

import numpy as np
import pytest

from satclip.embedding.formats import checksum


@pytest.mark.parametrize("algorithm", ["xxh3_64", "crc32"])
def test_a_changed_byte_is_found(monkeypatch, algorithm):
    if algorithm == "xxh3_64" and checksum.xxhash is None:
        pytest.skip("xxhash is not installed")
    if algorithm == "crc32":
        monkeypatch.setattr(checksum, "xxhash", None)
    emb = np.random.default_rng(0).standard_normal((100, 16)).astype(np.float32)
    scale = np.ones(100, np.float32)
    rec = checksum.digest(emb, scale)
    assert list(rec) == [algorithm]
    assert checksum.matches(rec, emb, scale) and checksum.matches(rec, emb.copy(), scale.copy())
    bad = emb.copy()
    bad.reshape(-1).view(np.uint8)[777] ^= 1
    assert not checksum.matches(rec, bad, scale)
    assert not checksum.matches(rec, emb, None)  # the scales belong to the checksum


def test_records_of_earlier_versions_are_crc32():
    import zlib
    emb = np.arange(64, dtype=np.float32).reshape(8, 8)
    assert checksum.matches({"rows": 8, "crc32": zlib.crc32(emb.data)}, emb)
    assert not checksum.matches({"rows": 8, "crc32": zlib.crc32(emb.data) ^ 1}, emb)


def test_xxh3_records_without_xxhash_say_what_to_install(monkeypatch):
    monkeypatch.setattr(checksum, "xxhash", None)
    with pytest.raises(ImportError, match="pip install xxhash"):
        checksum.matches({"xxh3_64": "00"}, np.zeros(3))
