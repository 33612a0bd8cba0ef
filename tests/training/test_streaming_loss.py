"""The streaming CLIP loss (satclip::clip_loss_streaming): the materialised loss's value and
gradients (both feature sets and the temperature) to float rounding, for every tiling, one
process and gathered negatives (the two-process run is in test_train_loss.py); opcheck and
gradcheck; the compiled kernel and the pure-PyTorch twin agree."""

import math

import pytest
import torch

from conftest import EPS32, float32_tolerance, require_compiled
from satclip.ops import ops
from satclip.ops import reference as ref
from satclip.training.loss import clip_loss


def _features(b, d, dtype, seed=0, scale=1 / 0.07):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(b, d, generator=g, dtype=torch.float64).to(dtype)
    loc = (img + 0.8 * torch.randn(b, d, generator=g, dtype=torch.float64).to(dtype)).requires_grad_(True)
    return img.requires_grad_(True), loc, torch.tensor(math.log(scale), dtype=dtype, requires_grad=True)


def _loss_and_grads(streaming, b=257, d=16, dtype=torch.float64, tile=0, scale=1 / 0.07):
    img, loc, ls = _features(b, d, dtype, scale=scale)
    loss = clip_loss(img, loc, ls, streaming=streaming, tile=tile)
    return (loss.detach(), *torch.autograd.grad(loss, (img, loc, ls)))


@pytest.mark.parametrize("tile", [0, 1, 64, 100, 257, 1000])
def test_equals_materialised_float64(tile):
    want = _loss_and_grads(False)
    got = _loss_and_grads(True, tile=tile)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)


def _precise_loss(img, loc, scale):
    """The CLIP loss of unit features, written from its definition so that it keeps its relative
    precision however small it is: each row's cross-entropy as log(1 + sum over the negatives of
    exp(negative - positive)). float64 inputs give the reference."""
    a = scale * img @ loc.t()
    pos = a.diagonal()
    off = ~torch.eye(a.shape[0], dtype=torch.bool)
    ce1 = torch.log1p(torch.where(off, torch.exp(a - pos[:, None]), 0).sum(1))
    ce2 = torch.log1p(torch.where(off, torch.exp(a - pos[None, :]), 0).sum(0))
    return (ce1.sum() + ce2.sum()) / (2 * a.shape[0])


@pytest.mark.parametrize("impl", ["compiled", "twin"])
@pytest.mark.parametrize("scale", [1 / 0.07, 60.0])  # the fixed-shift schedule, and the running max
@pytest.mark.parametrize("b", [1, 2, 513])
def test_float32_within_its_precision_of_float64(b, scale, impl):
    """The float32 op against the float64 definition, within tolerances derived from the
    magnitudes it sums (conftest's policy). A logit of size s carries an error of about
    eps * s, so each exp(negative - positive) one of about 2 * eps * s relative: the loss, a sum
    of such terms, has that relative error (b = 2: a loss near 7e-6 keeps it), and each gradient
    element that of the sum of its terms' magnitudes, |d loss / d logit| times the features."""
    if impl == "compiled":
        require_compiled("clip_loss_streaming")
    op = ops.clip_loss_streaming if impl == "compiled" else ref.clip_loss_streaming
    g = torch.Generator().manual_seed(b)
    img = torch.nn.functional.normalize(torch.randn(b, 32, generator=g, dtype=torch.float64), dim=1)
    loc = torch.nn.functional.normalize(img + 0.8 * torch.randn(b, 32, generator=g, dtype=torch.float64), dim=1)
    s64 = torch.tensor(scale, dtype=torch.float64)
    x64 = [t.clone().requires_grad_(True) for t in (img, loc, s64)]
    want_loss = _precise_loss(*x64)
    want = (want_loss.detach(), *torch.autograd.grad(want_loss, x64))
    x32 = [t.float().requires_grad_(True) for t in (img, loc, s64)]
    loss = op(x32[0], x32[1], None, None, x32[2], 0, 128)[0]
    got = (loss.detach(), *torch.autograd.grad(loss, x32)) if impl == "compiled" else (loss.detach(),)
    # |d loss / d logit|, from the same definition in float64
    a = (scale * img @ loc.t()).requires_grad_(True)
    pos = a.diagonal()
    off = ~torch.eye(b, dtype=torch.bool)
    l = (torch.log1p(torch.where(off, torch.exp(a - pos[:, None]), 0).sum(1)).sum()
         + torch.log1p(torch.where(off, torch.exp(a - pos[None, :]), 0).sum(0)).sum()) / (2 * b)
    da = torch.autograd.grad(l, a)[0].abs()
    rel = (1 + 2 * scale) * EPS32
    tols = [float32_tolerance(want[0], rel=rel), float32_tolerance(scale * da @ loc.abs(), rel=rel),
            float32_tolerance(scale * da.t() @ img.abs(), rel=rel),
            float32_tolerance((da * (scale * img @ loc.t()).abs()).sum() / scale, rel=rel)]
    for name, x, w, tol in zip(("loss", "grad img", "grad loc", "grad scale"), got, want, tols):
        err = (x.double() - w).abs()
        assert bool((err <= tol).all()), (name, float(err.max()), float((err / tol).max()))


def test_a_loss_of_one_row_is_zero():
    """b = 1: the positive is the only key; the loss is exactly 0 (not a logit's rounding)."""
    loss, *grads = _loss_and_grads(True, b=1, d=8, dtype=torch.float32)
    assert float(loss) == 0.0 and all(float(g.abs().max()) == 0.0 for g in grads)


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
