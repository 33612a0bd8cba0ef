"""The Ray Data adapter on a local Ray instance with 2 CPU workers (encoder actors): same
embeddings as satclip.embed (skipped when ray is not installed). The instance advertises 4
logical CPUs so that read and write tasks run beside the two actors."""

import numpy as np
import pytest
import torch

import satclip

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def test_ray_adapter_matches_single_process(tmp_path):
    from satclip.embedding.ray_adapter import embed_parquet_with_ray

    torch.manual_seed(0)
    enc = satclip.LocationEncoder(6, 32, 2, 8).float().eval()
    ckpt = satclip.save(enc, tmp_path / "enc.safetensors")
    rng = np.random.default_rng(0)
    n = 3000
    lon, lat = rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)
    (tmp_path / "pts").mkdir()
    for k in range(3):  # three files, so that both actors get input
        sl = slice(k * 1000, (k + 1) * 1000)
        pq.write_table(pa.table({"id": np.arange(n)[sl], "lon": lon[sl], "lat": lat[sl]}),
                       tmp_path / "pts" / f"part{k}.parquet")
    ray.init(num_cpus=4, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        embed_parquet_with_ray(ckpt, str(tmp_path / "pts"), tmp_path / "out", batch_size=500, concurrency=2,
                               num_blocks=6)
    finally:
        ray.shutdown()
    t = pa.concat_tables([pq.read_table(p) for p in sorted((tmp_path / "out").glob("*.parquet"))])
    ids = t.column("id").to_numpy()
    assert np.array_equal(np.sort(ids), np.arange(n))  # every row once
    emb = np.stack(t.column("embedding").to_numpy(zero_copy_only=False))
    want = satclip.embed(satclip.load(ckpt, dtype=torch.float32), np.stack([lon, lat], 1))
    assert np.allclose(emb, want[ids], atol=1e-5)
