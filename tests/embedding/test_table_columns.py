"""Inputs as users have them: text ids kept as they are, input columns carried through
(--keep-cols), and satclip.embed returning the user's own frame with an embedding column."""

import numpy as np
import pytest
import torch

import satclip
from satclip.embedding import sources as S
from satclip.embedding.runner import run_embedding

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return satclip.LocationEncoder(4, 16, 2, 8).float().eval()


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    n = 150
    path = tmp_path / "sites.parquet"
    pq.write_table(pa.table({"name": [f"pt{i}" for i in range(n)], "lon": rng.uniform(-180, 180, n),
                             "lat": rng.uniform(-90, 90, n), "biome": rng.integers(0, 5, n),
                             "note": [f"n{i}" for i in range(n)]}), path)
    return path


def test_text_ids_and_kept_columns(tmp_path, encoder, table):
    src = S.TableSource(table, id_col="name", keep_cols=["biome", "note"], chunk_points=64)
    out = run_embedding(encoder, src, tmp_path / "o", progress=False)
    df = pd.read_parquet(out).reset_index(drop=True)
    inp = pd.read_parquet(table)
    assert df["id"].tolist() == inp["name"].tolist()  # strings, as they were, in order
    assert df["biome"].tolist() == inp["biome"].tolist() and df["note"].tolist() == inp["note"].tolist()
    every = S.TableSource(table, id_col="name", keep_cols=["*"])
    assert every.keep_cols == ["biome", "note"]


def test_refusals(tmp_path, encoder, table):
    with pytest.raises(ValueError, match=r"keep_cols \['nope'\] not found"):
        S.TableSource(table, keep_cols=["nope"])
    with pytest.raises(ValueError, match="would clash"):
        S.TableSource(table, keep_cols=["lat"])
    # the Python API's refusals name its own keywords (the CLI's name the flags: tests/cli)
    with pytest.raises(ValueError, match=r"keep_cols needs fmt='parquet' \(fmt='npy' stores embeddings"):
        run_embedding(encoder, S.TableSource(table, keep_cols=["biome"]), tmp_path / "n", fmt="npy", progress=False)
    with pytest.raises(ValueError, match="fmt='npy' stores integer ids.*use fmt='parquet'"):
        run_embedding(encoder, S.TableSource(table, id_col="name"), tmp_path / "m", fmt="npy", progress=False)
    assert not (tmp_path / "m").exists()  # a refused first run leaves nothing behind


def test_embed_as_frame(encoder):
    df = pd.DataFrame({"lon": [10.0, -70.5, 150.0], "lat": [45.0, -12.0, -33.0], "site": ["a", "b", "c"]},
                      index=[7, 3, 9])
    got = satclip.embed(encoder, df, as_frame=True)
    assert list(got.index) == [7, 3, 9] and list(got.columns) == ["lon", "lat", "site", "embedding"]
    assert np.array_equal(np.stack(got["embedding"]), satclip.embed(encoder, df))
    assert "embedding" not in df.columns  # the input is left as it was
    with pytest.raises(TypeError, match="as_frame=True needs a pandas DataFrame"):
        satclip.embed(encoder, df[["lon", "lat"]].to_numpy(), as_frame=True)
