"""satclip::iso_latitude_encoder_forward (the encoder with its first layer factorised over
latitude rows): the compiled CPU kernel against the pure-PyTorch twin on rows of every size
(empty rows, rows longer than a chunk, a last partial chunk), layer widths that change, the
refusals both give, and torch.library.opcheck."""

import pytest
import torch

from conftest import require_compiled
from satclip.ops import ops
from satclip.ops import reference as ref

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _inputs(counts, widths, J=7, dtype=torch.float64, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    n = sum(counts)
    t = torch.randn(n, J, generator=g, dtype=dtype)
    a = torch.randn(len(counts), J, widths[0], generator=g, dtype=dtype) / J ** 0.5
    ws = [torch.randn(widths[i + 1], widths[i], generator=g, dtype=dtype) / widths[i] ** 0.5
          for i in range(len(widths) - 1)]
    bs = [torch.randn(w, generator=g, dtype=dtype) for w in widths]
    return [x.to(device) for x in (t, a)] + [list(counts), [w.to(device) for w in ws], [b.to(device) for b in bs]]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("widths", [[24, 3], [16, 40, 8], [32, 32, 32, 5]])
def test_matches_the_twin(device, dtype, tol, widths):
    require_compiled("iso_latitude_encoder_forward", device)
    counts = [5, 0, 17, 1, 40, 3, 0, 9]
    t, a, counts, ws, bs = _inputs(counts, widths, dtype=dtype, device=device)
    want = ref.iso_latitude_encoder_forward(t, a, counts, ws, bs, 30.0, 1.0, 10**6)
    for chunk in (1, 8, 20, 1000):  # rows longer than a chunk go alone; chunks hold whole rows
        got = ops.iso_latitude_encoder_forward(t, a, counts, ws, bs, 30.0, 1.0, chunk)
        assert got.shape == (sum(counts), widths[-1]) and got.dtype == dtype
        assert (got - want).abs().max().item() < tol


@pytest.mark.parametrize("device", DEVICES)
def test_twin_in_chunks_of_whole_rows(device):
    # the twin (CUDA's path, and the fallback's) bounds its activations to chunks of whole rows
    t, a, counts, ws, bs = _inputs([5, 0, 17, 1, 40, 3, 0, 9], [16, 24, 4], device=device)
    whole = ref.iso_latitude_encoder_forward(t, a, counts, ws, bs, 30.0, 1.0, 10**6)
    for chunk in (1, 8, 20):
        assert (ref.iso_latitude_encoder_forward(t, a, counts, ws, bs, 30.0, 1.0, chunk) - whole).abs().max() < 1e-12


def test_empty_input():
    t, a, counts, ws, bs = _inputs([0, 0], [8, 3])
    assert ops.iso_latitude_encoder_forward(t, a, counts, ws, bs, 30.0, 1.0, 16).shape == (0, 3)


@pytest.mark.parametrize("fn", [ops.iso_latitude_encoder_forward, ref.iso_latitude_encoder_forward])
def test_refusals(fn):
    t, a, counts, ws, bs = _inputs([2, 3], [8, 4, 3])

    def call(**kw):
        args = dict(lon_parts=t, row_weights=a, row_counts=counts, weights=ws, biases=bs)
        args.update(kw)
        return fn(args["lon_parts"], args["row_weights"], args["row_counts"], args["weights"], args["biases"],
                  30.0, 1.0, kw.get("chunk", 16))

    with pytest.raises(RuntimeError, match="row counts sum to 4 but lon_parts has 5 points"):
        call(row_counts=[1, 3])
    with pytest.raises(RuntimeError, match="expected 2 row counts"):
        call(row_counts=[5])
    with pytest.raises(RuntimeError, match="row counts must be >= 0"):
        call(row_counts=[6, -1])
    with pytest.raises(RuntimeError, match=r"row_weights must be \[rows, 7, H\]"):
        call(row_weights=a[:, :6])
    with pytest.raises(RuntimeError, match="one bias more"):
        call(biases=bs[1:])
    with pytest.raises(RuntimeError, match=r"weights\[0\] must have 8 inputs"):
        call(weights=[ws[0][:, :5], ws[1]])
    with pytest.raises(RuntimeError, match=r"biases\[0\] must be \[8\]"):
        call(biases=[bs[0][:3]] + bs[1:])
    with pytest.raises(RuntimeError, match="must match lon_parts' dtype"):
        call(row_weights=a.float())
    with pytest.raises(RuntimeError, match="tile_points must be positive"):
        call(chunk=0)
    with pytest.raises(RuntimeError, match="float32 or float64 lon_parts"):
        call(lon_parts=t.half())


def test_no_backward():
    t, a, counts, ws, bs = _inputs([2, 3], [8, 3])
    y = ops.iso_latitude_encoder_forward(t.requires_grad_(True), a, counts, ws, bs, 30.0, 1.0, 16)
    with pytest.raises(RuntimeError, match="inference op and has no backward"):
        y.sum().backward()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(device, dtype):
    t, a, counts, ws, bs = _inputs([3, 0, 6], [8, 5, 3], dtype=dtype, device=device)
    torch.library.opcheck(ops.iso_latitude_encoder_forward.default, (t, a, counts, ws, bs, 30.0, 1.0, 4))
