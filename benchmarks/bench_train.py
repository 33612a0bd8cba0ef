"""Training throughput (samples/s, reported as "points" per second).

* ``train-location-L40``: one optimizer step of the frozen-backbone cached mode (cached image
  features [8192, 512] -> projection; location encoder L = 40, hidden 512, 2 sine layers,
  output 256, float32, dropout on; CLIP loss; backward; AdamW) with the compiled ops ("compiled")
  vs the same model written with the pure-PyTorch twins under plain autograd ("fallback").
* ``train-location-encoder-only-L40``: the same location encoder alone (forward, backward
  from a fixed gradient, AdamW), without the ``[B, B]`` logits.
* ``train-resnet18-256px``: one end-to-end step with the image backbone (ResNet18, 13 bands,
  256 x 256, batch 32; the location encoder L = 10) trained ("full") or frozen except its
  projection ("frozen"), on CPU.
"""

import math

import pytest
import torch

from conftest import SMOKE, points, run, size
from satclip.ops import reference as ref

lightning = pytest.importorskip("lightning")
pytest.importorskip("timm")

from satclip.training.loss import clip_loss  # noqa: E402
from satclip.training.model import SatCLIP  # noqa: E402


def _reference_location(enc, lonlat):
    """The location encoder's training forward with the pure-PyTorch twins (autograd through them)."""
    feats = ref.spherical_harmonics(lonlat, enc.legendre_polys)
    x = feats
    w = enc.folded_first_weight()
    for i, layer in enumerate(enc.nnet.layers):
        x = ref.siren_layer(x, w if i == 0 else layer.weight, layer._bias(), layer.w0,
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
        loc = model.encode_location(lonlat) if impl == "compiled" else _reference_location(model.location, lonlat)
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
