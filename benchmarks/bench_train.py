"""Training throughput (samples/s, reported as "points" per second).

* ``train-location-L40``: one optimizer step of the frozen-backbone cached mode (cached image
  features [8192, 512] -> projection; location encoder L = 40, hidden 512, 2 sine layers,
  output 256, float32, dropout on; CLIP loss; backward; AdamW) with the compiled ops ("compiled")
  vs the same model written with the pure-PyTorch twins under plain autograd ("fallback").
* ``train-location-encoder-only-L40``: the same location encoder alone (forward, backward
  from a fixed gradient, AdamW), without the ``[B, B]`` logits.
* ``train-location-side-L10-b*``: the location side against the original recipe re-created.
* ``train-cached-step-L10-b*``: a whole cached-feature step against the original recipe re-created.
* ``clip-loss-b*``: the CLIP loss alone, materialised and streaming.
* ``train-data-s2100k-256px``: the S2-100K loader's samples/s.
* ``train-resnet18-256px``: one end-to-end step with the image backbone (ResNet18, 13 bands,
  256 x 256, batch 32; the location encoder L = 10) trained ("full") or frozen except its
  projection ("frozen"), on CPU.
"""

import math

import pytest
import torch

from conftest import SMOKE, points, run, size
from original import OriginalLocationEncoder
from satclip.ops import reference as ref

lightning = pytest.importorskip("lightning")
pytest.importorskip("timm")

from satclip.training.loss import clip_loss  # noqa: E402
from satclip.model import SatCLIP  # noqa: E402


def _reference_location(enc, lonlat):
    """The location encoder's training forward with the pure-PyTorch twins (autograd through them)."""
    feats = ref.spherical_harmonics(lonlat, enc.legendre_polys)
    x = feats
    w = enc.folded_first_weight()
    for i, layer in enumerate(enc.nnet.layers):
        x = ref.siren_layer(x, w if i == 0 else layer.weight, layer.bias_or_zeros(), layer.w0,
                            layer.dropout_mask(x.shape[0]), False)[0]
    return enc.nnet.last_layer(x)


def _model_and_optimizer(**kw):
    torch.manual_seed(0)
    model = SatCLIP(embed_dim=256, vision_layers="resnet18", capacity=512, num_hidden_layers=2, **kw).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    return model, opt


def _optimizer_step(opt, loss, grad=None):
    opt.zero_grad(set_to_none=True)
    loss.backward(grad)
    opt.step()


@pytest.mark.parametrize("impl", ["compiled", "fallback"])
def bench_train_location_side(benchmark, impl):
    benchmark.group = "train-location-L40-b8192"
    n = size(8192)
    model, opt = _model_and_optimizer(legendre_polys=40, freeze_backbone=True)
    pooled = torch.randn(n, 512)
    lonlat = points(n, torch.float32)

    def step():
        img = model.encode_pooled(pooled)
        loc = model.encode_location(lonlat).float() if impl == "compiled" else _reference_location(model.location, lonlat)
        _optimizer_step(opt, clip_loss(img, loc, model.logit_scale))

    run(benchmark, step, n_points=n, impl=impl, rounds=5)


@pytest.mark.parametrize("impl", ["compiled", "fallback"])
def bench_train_location_encoder_only(benchmark, impl):
    """The location encoder's own share of that step (forward, backward from a fixed output
    gradient, AdamW), without the [B, B] CLIP logits that dominate the full step at B = 8192."""
    benchmark.group = "train-location-encoder-only-L40-b8192"
    n = size(8192)
    model, _ = _model_and_optimizer(legendre_polys=40, freeze_backbone=True)
    enc = model.location
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-4, weight_decay=0.01)
    lonlat = points(n, torch.float32)
    grad = torch.randn(n, 256)

    def step():
        _optimizer_step(opt, enc(lonlat) if impl == "compiled" else _reference_location(enc, lonlat), grad)

    run(benchmark, step, n_points=n, impl=impl, rounds=5)


@pytest.mark.parametrize("impl", ["full", "frozen"])
def bench_train_resnet18_end_to_end(benchmark, impl):
    benchmark.group = "train-resnet18-256px-b32"
    n, px = size(32, 4), (64 if SMOKE else 256)
    model, opt = _model_and_optimizer(legendre_polys=10, freeze_backbone=impl == "frozen")
    images = torch.rand(n, 13, px, px)
    lonlat = points(n, torch.float32)

    def step():
        img, loc = model(images, lonlat)
        _optimizer_step(opt, clip_loss(img, loc, model.logit_scale))

    run(benchmark, step, n_points=n, impl=impl, rounds=3)


# -- against the original recipe ------------------------------------------------------------------

@pytest.mark.parametrize("L,batch", [(10, 512), (10, 8192), (40, 512)])
@pytest.mark.parametrize("impl", ["original-float64", "satclip-float32", "satclip-float64"])
def bench_train_location_side_vs_original(benchmark, impl, L, batch):
    """The location side of a training step (forward with dropout, backward from a fixed output
    gradient, AdamW), L = 10 and 40, hidden 512, output 256: the original's float64 encoder
    re-created (plain layers, its SH evaluation, AdamW) against this package's in float32 and
    float64."""
    benchmark.group = f"train-location-side-L{L}-b{batch}"
    n = size(batch)
    torch.manual_seed(0)
    lonlat = points(n, torch.float64)
    if impl == "original-float64":
        enc = OriginalLocationEncoder(L).double().train()
        opt = torch.optim.AdamW(enc.parameters(), lr=1e-4, weight_decay=0.01)
        x, grad = lonlat, torch.randn(n, 256, dtype=torch.float64)
    else:
        from satclip.nn import LocationEncoder
        dtype = torch.float32 if impl.endswith("32") else torch.float64
        enc = LocationEncoder(L, 512, 2, 256).to(dtype).train()
        opt = torch.optim.AdamW(enc.parameters(), lr=1e-4, weight_decay=0.01, fused=True)
        x, grad = lonlat.to(dtype), torch.randn(n, 256, dtype=dtype)

    run(benchmark, lambda: _optimizer_step(opt, enc(x), grad), n_points=n, impl=impl, rounds=7)


@pytest.mark.parametrize("batch,impl", [(8192, "materialised"), (8192, "streaming"), (32768, "streaming")])
def bench_clip_loss(benchmark, batch, impl):
    """The CLIP loss alone, forward + backward, D = 256, one process (peak memory of the same
    cases: benchmarks/loss_memory.py -> results/loss-memory.md)."""
    benchmark.group = f"clip-loss-b{batch}"
    n = size(batch)
    g = torch.Generator().manual_seed(0)
    img = torch.randn(n, 256, generator=g).requires_grad_(True)
    loc = torch.randn(n, 256, generator=g).requires_grad_(True)
    ls = torch.tensor(math.log(1 / 0.07), requires_grad=True)

    def step():
        clip_loss(img, loc, ls, streaming=impl == "streaming").backward()

    run(benchmark, step, n_points=n, impl=impl, rounds=3)


def bench_s2100k_loading(benchmark):
    """Reading S2-100K patches (rasterio, 12-band uint16 256 x 256 GeoTIFF, to 13 bands, the
    training transforms) with 2 DataLoader workers: samples/s to set against the step's."""
    pytest.importorskip("rasterio")
    from pathlib import Path

    from torch.utils.data import ConcatDataset, DataLoader

    from satclip.training.s2100k import S2100KDataset
    from satclip.training.transforms import TrainTransform
    benchmark.group = "train-data-s2100k-256px"
    root = Path(__file__).resolve().parents[1] / "tests" / "data" / "s2"
    ds = ConcatDataset([S2100KDataset(root, transform=TrainTransform(224))] * size(32, 2))
    loader = DataLoader(ds, batch_size=32, num_workers=0 if SMOKE else 2)

    def read_all():
        for _ in loader:
            pass

    run(benchmark, read_all, n_points=len(ds), impl="rasterio-2-workers", rounds=3)


@pytest.mark.parametrize("batch", [512, 8192])
@pytest.mark.parametrize("impl", ["original-float64", "satclip-float32", "satclip-float64"])
def bench_train_cached_step_vs_original(benchmark, impl, batch):
    """A whole frozen-backbone (cached-feature) training step, L = 10: projection of cached
    [B, 512] image features, the location encoder, the CLIP loss, backward, AdamW. The original
    recipe re-created (float64 location side as above, materialised loss, AdamW) against this
    package's (compiled ops, streaming loss, fused AdamW) in float32 and float64."""
    benchmark.group = f"train-cached-step-L10-b{batch}"
    n = size(batch)
    torch.manual_seed(0)
    lonlat = points(n, torch.float64)
    pooled = torch.randn(n, 512)
    proj = torch.nn.Linear(512, 256)
    ls = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    if impl == "original-float64":
        enc, streaming, kw = OriginalLocationEncoder(10).double().train(), False, {}
        x = lonlat
    else:
        from satclip.nn import LocationEncoder
        dtype = torch.float32 if impl.endswith("32") else torch.float64
        enc, streaming, kw = LocationEncoder(10, 512, 2, 256).to(dtype).train(), True, {"fused": True}
        x = lonlat.to(dtype)
    opt = torch.optim.AdamW([*enc.parameters(), *proj.parameters(), ls], lr=1e-4, weight_decay=0.01, **kw)

    def step():
        _optimizer_step(opt, clip_loss(proj(pooled), enc(x).float(), ls, streaming=streaming))

    run(benchmark, step, n_points=n, impl=impl, rounds=5)
