"""The streaming CLIP loss (satclip::clip_loss_streaming): the materialised loss's value and
gradients (both feature sets and the temperature) to float rounding, for every tiling, one
process and gathered negatives (the two-process run is in test_train_loss.py); opcheck and
gradcheck; the compiled kernel and the pure-PyTorch twin agree."""

import math

import pytest
import torch

from conftest import require_compiled
from satclip.ops import ops
from satclip.ops import reference as ref
from satclip.training.loss import clip_loss


def _features(b, d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(b, d, generator=g, dtype=torch.float64).to(dtype)
    loc = (img + 0.8 * torch.randn(b, d, generator=g, dtype=torch.float64).to(dtype)).requires_grad_(True)
    return img.requires_grad_(True), loc, torch.tensor(math.log(1 / 0.07), dtype=dtype, requires_grad=True)


def _loss_and_grads(streaming, b=257, d=16, dtype=torch.float64, tile=0):
    img, loc, ls = _features(b, d, dtype)
    loss = clip_loss(img, loc, ls, streaming=streaming, tile=tile)
    return (loss.detach(), *torch.autograd.grad(loss, (img, loc, ls)))


@pytest.mark.parametrize("tile", [0, 1, 64, 100, 257, 1000])
def test_equals_materialised_float64(tile):
    want = _loss_and_grads(False)
    got = _loss_and_grads(True, tile=tile)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("b", [1, 2, 513])
def test_equals_materialised_float32(b):
    want = _loss_and_grads(False, b=b, d=32, dtype=torch.float32)
    got = _loss_and_grads(True, b=b, d=32, dtype=torch.float32, tile=128)
    for a, w in zip(got, want):
        torch.testing.assert_close(a, w, rtol=2e-5, atol=2e-6)


def _normalised(b, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(b, d, generator=g, dtype=torch.float64), dim=1)


def test_gathered_negatives_equal_the_combined_batch_single_process_view():
    """Rows [8, 20) of a global batch of 30: the loss of those rows against all 30 (both
    directions) equals the materialised logits of clip_logits for those rows."""
    all_img, all_loc = _normalised(30, 8, 1), _normalised(30, 8, 2)
    img, loc = all_img[8:20], all_loc[8:20]
    s = torch.tensor(7.0, dtype=torch.float64)
    loss = ops.clip_loss_streaming(img, loc, all_img, all_loc, s, 8, 7)[0]
    li = s * img @ all_loc.t()
    lj = s * loc @ all_img.t()
    labels = torch.arange(8, 20)
    want = (torch.nn.functional.cross_entropy(li, labels) + torch.nn.functional.cross_entropy(lj, labels)) / 2
    torch.testing.assert_close(loss, want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("gathered", [False, True])
def test_gradcheck_and_opcheck(gathered):
    img = _normalised(6, 4, 3).requires_grad_(True)
    loc = _normalised(6, 4, 4).requires_grad_(True)
    s = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    if gathered:
        others_i, others_l = _normalised(5, 4, 5), _normalised(5, 4, 6)
        all_img = torch.cat([others_i[:2], img.detach(), others_i[2:]]).requires_grad_(True)
        all_loc = torch.cat([others_l[:2], loc.detach(), others_l[2:]]).requires_grad_(True)
        args = (img, loc, all_img, all_loc, s, 2, 3)
    else:
        args = (img, loc, None, None, s, 0, 4)
    fn = lambda *a: ops.clip_loss_streaming(*a)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, args)
    torch.library.opcheck(ops.clip_loss_streaming.default, args)


def test_compiled_and_twin_agree():
    require_compiled("clip_loss_streaming")
    img, loc = _normalised(300, 32, 7), _normalised(300, 32, 8)
    s = torch.tensor(14.0, dtype=torch.float64)
    a = ops.clip_loss_streaming(img, loc, None, None, s, 0, 64)
    b = ref.clip_loss_streaming(img, loc, None, None, s, 0, 64)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("impl", [ops.clip_loss_streaming, ref.clip_loss_streaming])
def test_bad_arguments(impl):
    x = _normalised(4, 3, 0)
    s = torch.tensor(1.0, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=r"img and loc of one shape \[b, D\]"):
        impl(x, x[:3], None, None, s, 0, 0)
    with pytest.raises(RuntimeError, match="both all_img and all_loc"):
        impl(x, x, x, None, s, 0, 0)
    with pytest.raises(RuntimeError, match="offset 3 puts this process's 4 rows outside the 6 gathered rows"):
        impl(x, x, torch.cat([x, x[:2]]), torch.cat([x, x[:2]]), s, 3, 0)


@pytest.mark.parametrize("gathered", [False, True])
@pytest.mark.parametrize("log_scale", [math.log(1 / 0.07), math.log(60.0)])
def test_both_schedules_equal_materialised(gathered, log_scale):
    """A small temperature takes the fixed-shift blocks, a large one (2 * 60 > 80 in float32) the
    running-max tiles; both give the materialised loss and gradients."""
    g = torch.Generator().manual_seed(3)
    all_img = torch.nn.functional.normalize(torch.randn(40, 8, generator=g), dim=1)
    all_loc = torch.nn.functional.normalize(all_img + 0.5 * torch.randn(40, 8, generator=g), dim=1)
    off, b = (10, 20) if gathered else (0, 40)
    leaves = [t.clone().requires_grad_(True) for t in (all_img[off:off + b], all_loc[off:off + b], all_img, all_loc)]
    img, loc, ai, al = leaves
    s = torch.tensor(math.exp(log_scale), requires_grad=True)
    args = (img, loc, ai, al) if gathered else (img, loc, None, None)
    loss = ops.clip_loss_streaming(*args, s, off, 16)[0]
    got = torch.autograd.grad(loss, [t for t in args if t is not None] + [s])
    keys_l, keys_i = (al, ai) if gathered else (loc, img)
    labels = torch.arange(off, off + b)
    ce = torch.nn.functional.cross_entropy
    want_loss = (ce(s * img @ keys_l.t(), labels) + ce(s * loc @ keys_i.t(), labels)) / 2
    want = torch.autograd.grad(want_loss, [t for t in args if t is not None] + [s])
    torch.testing.assert_close(loss, want_loss, rtol=1e-5, atol=1e-5)

    def owned(gr):
        """Gradients as the gather's backward delivers them: a process's rows get what reached
        them directly and through the gathered copy (the two losses route the positives through
        either; the sums agree)."""
        if not gathered:
            return gr
        g_img, g_loc, g_ai, g_al, g_s = gr
        g_ai, g_al = g_ai.clone(), g_al.clone()
        g_ai[off:off + b] += g_img
        g_al[off:off + b] += g_loc
        return g_ai, g_al, g_s

    for a, w in zip(owned(got), owned(want)):
        torch.testing.assert_close(a, w, rtol=1e-4, atol=1e-5)
