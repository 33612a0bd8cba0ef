"""satclip.nn: state_dict layout, initialisation, fused vs unfused paths, training mode,
dtype handling and input validation."""

import math

import pytest
import torch

from conftest import lonlat_points
import satclip
from satclip import functional as F
from satclip.nn import LocationEncoder, Siren, SirenNet


def _manual_forward(enc: LocationEncoder, x: torch.Tensor) -> torch.Tensor:
    """The SatCLIP forward written with plain torch ops on the float64 scipy-checked SH."""
    f = F.spherical_harmonics(x, enc.legendre_polys, convention=enc.harmonics)
    h = f
    for i, layer in enumerate(enc.nnet.layers):
        h = torch.sin(layer.w0 * (h @ layer.weight.t() + layer.bias))
    return h @ enc.nnet.last_layer.weight.t() + enc.nnet.last_layer.bias


def test_state_dict_keys_match_satclip():
    enc = LocationEncoder(legendre_polys=10, dim_hidden=512, num_hidden_layers=2, dim_out=256)
    keys = set(enc.state_dict())
    assert keys == {"nnet.layers.0.weight", "nnet.layers.0.bias", "nnet.layers.1.weight", "nnet.layers.1.bias",
                    "nnet.last_layer.weight", "nnet.last_layer.bias"}
    assert enc.nnet.layers[0].weight.shape == (512, 100)
    assert enc.nnet.last_layer.weight.shape == (256, 512)
    n_params = sum(p.numel() for p in enc.parameters())
    assert n_params == 100 * 512 + 512 + 512 * 512 + 512 + 512 * 256 + 256  # 445,696 as released


def test_initialisation_ranges():
    torch.manual_seed(0)
    net = SirenNet(100, 64, 8, 2)
    first, second, last = net.layers[0], net.layers[1], net.last_layer
    assert first.weight.abs().max() <= 1 / 100 and first.weight.abs().max() > 0.9 / 100
    bound = math.sqrt(6 / 64) / 1.0
    assert second.weight.abs().max() <= bound and second.weight.abs().max() > 0.9 * bound
    assert last.weight.abs().max() <= bound
    assert first.w0 == 30.0 and second.w0 == 1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("harmonics", ["analytic", "closed-form"])
def test_fused_unfused_and_manual_agree(dtype, harmonics):
    torch.manual_seed(1)
    enc = LocationEncoder(legendre_polys=10, dim_hidden=64, num_hidden_layers=2, dim_out=16,
                          harmonics=harmonics).to(dtype).eval()
    x = lonlat_points(300, dtype=dtype)
    with torch.no_grad():
        fused = enc(x)
        enc.fused = False
        unfused = enc(x)
        manual = _manual_forward(enc, x)
    tol = 1e-12 if dtype == torch.float64 else 2e-4
    assert fused.shape == (x.shape[0], 16) and fused.dtype == dtype
    assert (fused - manual).abs().max().item() < tol
    assert (unfused - manual).abs().max().item() < tol


def test_fused_chunks_cover_every_row():
    torch.manual_seed(2)
    enc = LocationEncoder(legendre_polys=6, dim_hidden=32, dim_out=8).double().eval()
    x = lonlat_points(1000)
    w = [enc.folded_first_weight(), enc.nnet.layers[1].weight, enc.nnet.last_layer.weight]
    b = [enc.nnet.layers[0].bias, enc.nnet.layers[1].bias, enc.nnet.last_layer.bias]
    with torch.no_grad():
        whole = F.location_encoder(x, 6, w, b, tile_points=100000)
        for chunk in (1, 7, 256, 1013):
            assert torch.allclose(F.location_encoder(x, 6, w, b, tile_points=chunk), whole, atol=1e-13)


@pytest.mark.parametrize("widths", [[40, 24, 8], [5], [16, 48, 48, 3]])
def test_fused_encoder_any_layer_widths_and_strided_points(widths):
    # The CPU op reuses one workspace for every chunk (two activation buffers sized for the
    # widest layer): layers of changing widths, no hidden layer at all, a last partial chunk and
    # strided coordinates must all give the pure-PyTorch twin's numbers.
    from satclip.ops import ops, reference as ref
    torch.manual_seed(3)
    L, dims = 7, [49] + widths
    w = [torch.randn(dims[i + 1], dims[i], dtype=torch.float64) / dims[i] ** 0.5 for i in range(len(widths))]
    b = [torch.randn(d, dtype=torch.float64) for d in widths]
    x = lonlat_points(301).flip(1).t().contiguous().t().flip(1)  # (lon, lat) with non-unit strides
    assert x.stride() != (2, 1)
    for chunk in (1, 64, 300, 1000):
        got = ops.location_encoder_forward(x, L, w, b, 30.0, 1.0, chunk)
        want = ref.location_encoder_forward(x, L, w, b, 30.0, 1.0, chunk)
        assert got.shape == (x.shape[0], widths[-1])
        assert (got - want).abs().max().item() < 1e-12


def test_training_mode_uses_dropout_and_backprops():
    torch.manual_seed(3)
    enc = LocationEncoder(legendre_polys=5, dim_hidden=32, dim_out=8).double().train()
    x = lonlat_points(64).requires_grad_(True)
    a = enc(x)
    b = enc(x)
    assert not torch.allclose(a, b)  # dropout masks differ between calls
    a.pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())
    assert torch.isfinite(x.grad).all()


def test_training_gradients_match_plain_torch():
    torch.manual_seed(4)
    enc = LocationEncoder(legendre_polys=6, dim_hidden=16, dim_out=4, dropout=False).double().train()
    x = lonlat_points(40)
    enc(x).sum().backward()
    got = [p.grad.clone() for p in enc.parameters()]
    enc.zero_grad()
    _manual_forward(enc, x).sum().backward()
    for g, w in zip(got, (p.grad for p in enc.parameters())):
        assert torch.allclose(g, w, atol=1e-10)


def test_gradcheck_whole_encoder_wrt_coordinates():
    torch.manual_seed(5)
    enc = LocationEncoder(legendre_polys=4, dim_hidden=8, dim_out=3, dropout=False).double().train()
    x = lonlat_points(3)[:3].requires_grad_(True)
    assert torch.autograd.gradcheck(enc, (x,), eps=1e-6, atol=1e-5)


def test_input_dtype_is_cast_to_parameters():
    enc = LocationEncoder(legendre_polys=4, dim_hidden=8, dim_out=3).float().eval()
    x = lonlat_points(10)  # float64
    with torch.no_grad():
        y = enc(x)
    assert y.dtype == torch.float32


@pytest.mark.parametrize("bad,exc,match", [
    (torch.zeros(3, 3), ValueError, r"shape \[N, 2\]"),
    (torch.zeros(3), ValueError, r"shape \[N, 2\]"),
    (torch.zeros(3, 2, dtype=torch.int64), TypeError, "float32 or float64"),
    (torch.tensor([[0.0, float("nan")]]), ValueError, "NaN or inf"),
    (torch.tensor([[float("inf"), 0.0]]), ValueError, "NaN or inf"),
    (torch.tensor([[0.0, 90.5]]), ValueError, "latitude outside"),
    (torch.tensor([[10.0, -91.0]]), ValueError, "latitude outside"),
    ([[0.0, 0.0]], TypeError, "torch.Tensor"),
])
def test_bad_input_is_named(bad, exc, match):
    enc = LocationEncoder(legendre_polys=3, dim_hidden=8, dim_out=2).eval()
    with pytest.raises(exc, match=match):
        enc(bad)
    with pytest.raises(exc, match=match):
        F.spherical_harmonics(bad, 3)


def test_longitudes_outside_range_are_periodic():
    enc = LocationEncoder(legendre_polys=8, dim_hidden=16, dim_out=4).double().eval()
    x = lonlat_points(20)
    with torch.no_grad():
        assert torch.allclose(enc(x), enc(x + torch.tensor([360.0, 0.0], dtype=torch.float64)), atol=1e-12)


def test_bad_degree():
    with pytest.raises(ValueError, match="legendre_polys"):
        F.spherical_harmonics(torch.zeros(1, 2), 0)
    with pytest.raises(TypeError, match="legendre_polys"):
        F.spherical_harmonics(torch.zeros(1, 2), 2.5)


def test_empty_input():
    enc = LocationEncoder(legendre_polys=3, dim_hidden=8, dim_out=2).double().eval()
    with torch.no_grad():
        assert enc(torch.zeros(0, 2, dtype=torch.float64)).shape == (0, 2)
    assert F.spherical_harmonics(torch.zeros(0, 2), 3).shape == (0, 9)


def test_siren_module_linear_layer():
    layer = Siren(4, 3, sine=False)
    x = torch.randn(5, 4)
    assert torch.allclose(layer(x), x @ layer.weight.t() + layer.bias)


def test_default_tile_pointss_per_implementation():
    # compiled CPU encoder (one workspace): about 8 MB of features, >= 512 points, so that each
    # chunk's GEMMs amortise their weight packing; the fallback (fresh buffers per chunk): 2 MB.
    assert F.default_tile_points(40, 4) == (8 << 20) // 6400 and F.default_tile_points(40, 4, compiled=False) == 327
    for L in (1, 10, 40, 100, 400):
        for itemsize in (4, 8):
            assert 512 <= F.default_tile_points(L, itemsize) <= 16384
            assert 256 <= F.default_tile_points(L, itemsize, compiled=False) <= 16384
            assert 1024 <= F.default_tile_points(L, itemsize, "cuda") <= 65536
