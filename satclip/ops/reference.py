"""Pure-PyTorch twins of every compiled kernel.

They are registered as the fallback implementation of the ``satclip`` ops (used when the
compiled extension is absent, disabled, or has no kernel for a device) and are what the tests
hold the C++/CUDA kernels against. They follow the same math as ``csrc/common/sh_math.h``:

* orthonormal real spherical harmonics, feature ``k = l*l + l + m`` (``m = -l..l``),
  ``Y_l0 = Q_l0``, ``Y_l,+m = sqrt2 Q_lm cos(m lon)``, ``Y_l,-m = sqrt2 Q_lm sin(m lon)``,
  ``Q_lm`` the orthonormal associated Legendre function of ``z = sin(lat)`` without the
  Condon-Shortley phase;
* the fully normalised forward-column recurrence, vectorised over ``m`` (O(L) torch ops on
  ``[N, L]`` tensors), with Holmes-Featherstone seed scaling against underflow;
* the latitude derivative through neighbouring orders (no division by ``cos(lat)``).

Everything here is differentiable by autograd, which the ops use for double backward.
"""

from __future__ import annotations

import math

import torch

from .._limits import PRECISIONS  # noqa: F401  (re-exported: satclip.ops.PRECISIONS)
from . import checks

_SCALE_UP = {torch.float32: 2.0**100, torch.float64: 2.0**900}


def _coefficients(L: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Recurrence tables ``a[l, m]``, ``b[l, m]`` (zero where unused) and the sectoral factors
    ``sect[m] = sqrt((2m+1)/(2m))`` (``sect[0] = 1/sqrt(4 pi)``), computed in float64 (as the
    kernels do) from factory ops only, so that this also traces under fake tensors."""
    f64 = dict(dtype=torch.float64, device=device)
    l = torch.arange(L, **f64)[:, None]
    m = torch.arange(L, **f64)[None, :]
    den = torch.where(l > m, l * l - m * m, 1.0)
    a_gen = torch.sqrt((4 * l * l - 1) / den)
    b_gen = torch.sqrt(torch.clamp(((l - 1) ** 2 - m * m) * (2 * l + 1) / ((2 * l - 3).abs().clamp(min=1) * den), min=0))
    a = torch.where(l == m + 1, torch.sqrt(2 * m + 3), torch.where(l >= m + 2, a_gen, 0.0))
    b = torch.where(l >= m + 2, b_gen, 0.0)
    ms = torch.arange(L, **f64)
    sect = torch.where(ms == 0, 1 / math.sqrt(4 * math.pi), torch.sqrt((2 * ms + 1) / (2 * ms).clamp(min=1)))
    return a.to(dtype), b.to(dtype), sect.to(dtype)


def _angles(lonlat: torch.Tensor):
    lon = torch.deg2rad(torch.remainder(lonlat[:, 0] + 180.0, 360.0) - 180.0)
    lat = torch.deg2rad(lonlat[:, 1])
    return lon, torch.sin(lat), torch.cos(lat)


def legendre_table(lonlat: torch.Tensor, L: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns ``Q[N, L(l), L(m)]`` (zero for m > l), ``cos(m lon)`` and ``sin(m lon)`` ``[N, L]``."""
    dtype, dev = lonlat.dtype, lonlat.device
    n = lonlat.shape[0]
    lon, z, u = _angles(lonlat)
    a, b, sect = _coefficients(L, dtype, dev)
    up = _SCALE_UP[dtype]
    ms = torch.arange(L, device=dev, dtype=dtype)
    cos_m, sin_m = torch.cos(lon[:, None] * ms), torch.sin(lon[:, None] * ms)
    rows = []
    p2 = lonlat.new_zeros(n, L)
    p1 = lonlat.new_zeros(n, L)
    eye = torch.eye(L, device=dev, dtype=dtype)
    z = z[:, None]
    for l in range(L):
        if l == 0:
            seed = torch.full_like(u, up / math.sqrt(4 * math.pi))
        else:
            seed = sect[l] * u * p1[:, l - 1]
        # Column recurrence for every m < l at once; the sectoral term enters at m = l.
        p0 = torch.addcmul(a[l] * z * p1 - b[l] * p2, seed[:, None], eye[l])
        rows.append(p0)
        p2, p1 = p1, p0
    q = torch.stack(rows, dim=1)
    # Values below the smallest normal number are flushed to zero before unscaling, as the
    # compiled kernels do: denormal arithmetic is ~100x slower on CPUs, here and downstream.
    # Exact zeros (z = 0 makes Q_l0 vanish for odd l) stay out of the mask so that autograd
    # still sees their non-zero derivative.
    tiny = (q.abs() < torch.finfo(dtype).tiny * up) & (q != 0)
    q = q.masked_fill(tiny, 0.0) * (1.0 / up)
    return q, cos_m, sin_m


def _feature_index(L: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ls = torch.arange(L, device=device)[:, None]
    ms = torch.arange(L, device=device)[None, :]
    valid = ms <= ls
    kp = torch.where(valid, ls * ls + ls + ms, 0)
    kn = torch.where(valid, ls * ls + ls - ms, 0)
    return kp, kn, valid


def degree_order(L: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Degree ``l`` and order ``m`` of every feature ``k = l*l + l + m``, as ``[L*L]`` int64."""
    l = torch.repeat_interleave(torch.arange(L, device=device), 2 * torch.arange(L, device=device) + 1)
    return l, torch.arange(L * L, device=device) - l * l - l


def _gather_index(L: int, device) -> torch.Tensor:
    """Feature k = l*l + l + m -> position in ``cat([Qc.flatten(1), Qs.flatten(1)])``."""
    l, m = degree_order(L, device)
    return torch.where(m >= 0, l * L + m, L * L + l * L - m)


def _chunk(L: int, device: torch.device) -> int:
    """Points per step. CPU: each [chunk, L, L] temporary near 1M elements, small enough to be
    reused by the allocator (fresh large blocks cost page faults) and mostly cache-resident.
    GPU: near 64M elements, so that each of the O(L) steps is one large kernel."""
    if device.type == "cuda":
        return max(1024, (1 << 26) // (L * L))
    return max(64, min(8192, (1 << 20) // (L * L)))


def spherical_harmonics(lonlat: torch.Tensor, L: int, scale: torch.Tensor | None = None) -> torch.Tensor:
    """``[N, 2]`` (lon, lat) degrees -> ``[N, L*L]`` orthonormal real SH, dtype of the input;
    each feature ``k`` times ``scale[k]`` when ``scale`` (``[L*L]``) is given."""
    checks.lonlat(lonlat, "satclip::spherical_harmonics")
    checks.degree(L, "satclip::spherical_harmonics")
    checks.scale(scale, lonlat, L, "satclip::spherical_harmonics")
    if scale is not None:
        return spherical_harmonics(lonlat, L) * scale
    if L == 0:
        return lonlat.new_zeros(lonlat.shape[0], 0)
    n, step = lonlat.shape[0], _chunk(L, lonlat.device)
    if n > step and not torch.compiler.is_compiling():
        return torch.cat([spherical_harmonics(lonlat[i : i + step], L) for i in range(0, n, step)])
    q, c, s = legendre_table(lonlat, L)
    f = torch.full((L,), math.sqrt(2.0), dtype=lonlat.dtype, device=lonlat.device)
    f[0] = 1.0
    qc = q * (c * f)[:, None, :]
    qs = q * (s * f)[:, None, :]
    both = torch.cat([qc.flatten(1), qs.flatten(1)], dim=1)
    return both[:, _gather_index(L, lonlat.device)]


def spherical_harmonics_backward(grad: torch.Tensor, lonlat: torch.Tensor, L: int) -> torch.Tensor:
    """dLoss/d(lon, lat) in degrees^-1 given ``grad = dLoss/dY`` ``[N, L*L]``; returns ``[N, 2]``."""
    op = "satclip::spherical_harmonics_backward"
    checks.lonlat(lonlat, op)
    checks.degree(L, op)
    checks.sh_grad(grad, lonlat, L, op)
    if L == 0:
        return torch.zeros_like(lonlat)
    q, c, s = legendre_table(lonlat, L)
    kp, kn, valid = _feature_index(L, lonlat.device)
    vm = valid.to(lonlat.dtype)
    gp = grad[:, kp] * vm  # [N, l, m]: dLoss/dY_l,+m (m = 0 included)
    gn = grad[:, kn] * vm  # dLoss/dY_l,-m
    ls = torch.arange(L, device=lonlat.device, dtype=lonlat.dtype)[:, None]
    ms = torch.arange(L, device=lonlat.device, dtype=lonlat.dtype)[None, :]
    mpos = (ms > 0).to(lonlat.dtype)
    sqrt2 = math.sqrt(2.0)
    # d/dlon: only m > 0 contribute.
    glon = sqrt2 * (ms * q * (gn * c[:, None, :] - gp * s[:, None, :]) * mpos).sum((1, 2))
    # d/dlat through neighbouring orders.
    q_up = torch.nn.functional.pad(q[:, :, 1:], (0, 1))
    q_dn = torch.nn.functional.pad(q[:, :, :-1], (1, 0))
    f_up = torch.sqrt(torch.clamp((ls + ms + 1) * (ls - ms), min=0))
    f_dn = torch.sqrt(torch.clamp((ls + ms) * (ls - ms + 1), min=0))
    dq = 0.5 * (f_up * q_up - f_dn * q_dn)
    glat_m = sqrt2 * (dq * (gp * c[:, None, :] + gn * s[:, None, :]) * mpos).sum((1, 2))
    glat_0 = (torch.sqrt(ls[:, 0] * (ls[:, 0] + 1)) * q_up[:, :, 0] * gp[:, :, 0]).sum(1)
    deg = math.pi / 180.0
    return torch.stack([glon, glat_0 + glat_m], dim=-1) * deg


def siren_layer(x, weight, bias, w0: float, mask, save_cos: bool):
    """``y = sin(w0 * (x @ W.T + b) * mask)`` and (if ``save_cos``) ``cos`` of the same argument."""
    checks.linear(x, weight, bias, "satclip::siren_layer")
    checks.mask(mask, x, x.shape[0], weight.shape[0], "satclip::siren_layer")
    z = torch.addmm(bias, x, weight.t())
    if mask is not None:
        z = z * mask
    arg = w0 * z
    y = torch.sin(arg)
    c = torch.cos(arg) if save_cos else x.new_empty(0)
    return y, c


def siren_layer_backward(grad_y, cos, x, weight, w0: float, mask, need_grad_x: bool = True):
    checks.siren_backward(grad_y, cos, x, weight, "satclip::siren_layer_backward")
    checks.mask(mask, grad_y, grad_y.shape[0], grad_y.shape[1], "satclip::siren_layer_backward")
    gz = grad_y * w0 * cos
    if mask is not None:
        gz = gz * mask
    return (gz @ weight if need_grad_x else x.new_empty(0)), gz.t() @ x, gz.sum(0)


def round_operand(x: torch.Tensor, precision: str) -> torch.Tensor:
    """``x`` (float32) rounded to the GEMM operand format of ``precision``, kept as float32:
    bf16 = 8 significant bits, tf32 and float16 = 11 (round to nearest even; float16 also has
    half's range: subnormals below 2^-14, inf from 65520). A float32 GEMM of rounded operands is
    what a tensor core computes in that mode (exact products, float32 sums)."""
    if precision == "float32":
        return x
    if precision == "bf16":
        return x.to(torch.bfloat16).to(torch.float32)
    if precision == "float16":
        return x.to(torch.float16).to(torch.float32)
    i = x.contiguous().view(torch.int32)
    lsb = torch.bitwise_and(torch.bitwise_right_shift(i, 13), 1)
    return torch.bitwise_and(i + 0xFFF + lsb, -8192).view(torch.float32)


def location_encoder_forward(lonlat, L: int, weights, biases, w0_first: float, w0_hidden: float,
                             tile_points: int, precision: str = "float32"):
    """Inference of SH -> sine layers -> linear, chunk by chunk (bounded memory)."""
    checks.encoder(lonlat, L, weights, biases, tile_points, precision)
    weights = [round_operand(w, precision) for w in weights]
    outs = []
    for lo in range(0, lonlat.shape[0], tile_points):
        h = spherical_harmonics(lonlat[lo : lo + tile_points], L)
        for i in range(len(weights) - 1):
            h, _ = siren_layer(round_operand(h, precision), weights[i], biases[i], w0_first if i == 0 else w0_hidden,
                               None, False)
        outs.append(torch.addmm(biases[-1], round_operand(h, precision), weights[-1].t()))
    if not outs:
        return lonlat.new_empty(0, weights[-1].shape[0])
    return torch.cat(outs)


def iso_latitude_encoder_forward(lon_parts, row_weights, row_counts, weights, biases, w0_first: float,
                                 w0_hidden: float, tile_points: int):
    """The encoder with its first layer factorised over latitude rows: row ``r``'s first
    pre-activation is ``lon_parts[row] @ row_weights[r] + biases[0]``, then sine layers and the
    linear output (``weights``: the layers after the first). Chunks of whole rows of about
    ``tile_points`` points, as the kernel's (bounded memory; a longer row is a chunk of its own)."""
    checks.iso_latitude_encoder(lon_parts, row_weights, row_counts, weights, biases, tile_points)
    out = lon_parts.new_empty(lon_parts.shape[0], weights[-1].shape[0])
    r, lo = 0, 0
    while r < len(row_counts):
        r1, size = r, 0
        while r1 < len(row_counts) and (size == 0 or size + row_counts[r1] <= tile_points):
            size += row_counts[r1]
            r1 += 1
        z = lon_parts.new_empty(size, row_weights.shape[2])
        at = 0
        for k in range(r, r1):
            c = row_counts[k]
            z[at:at + c] = torch.addmm(biases[0], lon_parts[lo + at:lo + at + c], row_weights[k])
            at += c
        h = torch.sin(w0_first * z)
        for i in range(len(weights) - 1):
            h = siren_layer(h, weights[i], biases[i + 1], w0_hidden, None, False)[0]
        torch.addmm(biases[-1], h, weights[-1].t(), out=out[lo:lo + size])
        r, lo = r1, lo + size
    return out


def sh_siren_layer(lonlat, L: int, weight, bias, w0: float, precision: str = "float32"):
    """The first sine layer from the coordinates: ``sin(w0 * (SH(lonlat) W^T + b))``.
    ``precision="bf16"`` (float32 inputs): SH and W rounded to bf16, float32 sums and sine,
    the result rounded to bf16 and returned as a bf16 tensor (the next layer's operand)."""
    checks.sh_siren_layer(lonlat, L, weight, bias, precision)
    if precision == "float32":
        return siren_layer(spherical_harmonics(lonlat, L), weight, bias, w0, None, False)[0]
    y = siren_layer(round_operand(spherical_harmonics(lonlat, L), "bf16"), round_operand(weight, "bf16"), bias, w0,
                    None, False)[0]
    return y.to(torch.bfloat16)


# ---------------------------------------------------------------------------- streaming CLIP loss
def clip_tile(b: int, tile: int) -> int:
    """Key columns per tile: ``tile`` if given (> 0), else about 16M logits per tile (64 MB in
    float32), at least 256."""
    return tile if tile > 0 else max(256, (1 << 24) // max(b, 1))


def _lse_update(m, s, a):
    """Online log-sum-exp over columns: running max ``m`` and sum ``s`` (of exp(x - m)) per row,
    updated with the tile ``a`` [b, T]; entries of -inf (the positives) add nothing, and a row
    with nothing finite yet keeps ``m = -inf, s = 0``."""
    m_new = torch.maximum(m, a.amax(dim=1))
    shift = m_new.masked_fill(torch.isinf(m_new), 0)
    s = s * torch.exp(m - shift) + torch.exp(a - shift[:, None]).sum(dim=1)
    return m_new, s


def _positives(tile, j: int, offset: int):
    """The positives of a logit tile (rows: this process's queries; columns: keys from ``j``):
    query ``r`` is paired with key ``offset + r``, on the tile's diagonal ``offset - j``."""
    return tile.diagonal(offset - j)


def _without_positives(a, j: int, offset: int):
    a = a.clone()
    _positives(a, j, offset).fill_(float("-inf"))
    return a


def _cross_entropy(lse_negatives, pos):
    """Each row's cross-entropy from the log-sum-exp of its negatives: ``log(1 + exp(lse - pos))``
    (keeps its relative precision when the positive dominates; ``lse - pos`` of every key would
    cancel to a logit's rounding)."""
    return torch.logaddexp(torch.zeros_like(pos), lse_negatives - pos)


def clip_loss_streaming(img, loc, all_img, all_loc, scale, offset: int, tile: int = 0):
    """Symmetric CLIP loss (``(CE(image -> location) + CE(location -> image)) / 2``, mean over this
    process's rows) without the ``[b, G]`` logits: key tiles of ``tile`` columns with a running
    log-sum-exp over the negatives. ``img``, ``loc`` ``[b, D]`` (normalised), ``scale`` the 0-dim
    temperature (already exponentiated). ``all_img``/``all_loc`` ``[G, D]``: every process's rows
    (this one's at ``offset``), or None for one process (then the keys are ``img``/``loc``
    themselves and one GEMM per tile serves both directions). Returns ``(loss, ce1, ce2)``: each
    row's cross-entropy (image -> location, and location -> image), what the backward needs."""
    checks.clip_inputs(img, loc, all_img, all_loc, scale, offset)
    b = img.shape[0]
    t = clip_tile(b, tile)
    pos = scale * (img * loc).sum(dim=1)  # logits of the positives (the own rows)
    neg_inf = torch.full((b,), float("-inf"), dtype=img.dtype, device=img.device)
    m1, s1 = neg_inf, torch.zeros_like(neg_inf)
    if all_img is None:  # one process: A = s * img @ loc^T, rows -> direction 1, columns -> direction 2
        lse2 = torch.empty_like(neg_inf)
        for j in range(0, b, t):
            a = _without_positives(scale * (img @ loc[j:j + t].t()), j, 0)
            m1, s1 = _lse_update(m1, s1, a)
            lse2[j:j + t] = torch.logsumexp(a, dim=0)
    else:
        m2, s2 = neg_inf, torch.zeros_like(neg_inf)
        for j in range(0, all_loc.shape[0], t):
            m1, s1 = _lse_update(m1, s1, _without_positives(scale * (img @ all_loc[j:j + t].t()), j, offset))
            m2, s2 = _lse_update(m2, s2, _without_positives(scale * (loc @ all_img[j:j + t].t()), j, offset))
        lse2 = m2 + torch.log(s2)
    ce1, ce2 = _cross_entropy(m1 + torch.log(s1), pos), _cross_entropy(lse2, pos)
    loss = (ce1.sum() + ce2.sum()) / (2 * b)
    return loss, ce1, ce2


def clip_loss_streaming_backward(grad, img, loc, all_img, all_loc, scale, ce1, ce2, offset: int, tile: int = 0):
    """Gradients of :func:`clip_loss_streaming` w.r.t. ``img``, ``loc``, ``all_img``, ``all_loc``
    (empty tensors for one process) and ``scale``, recomputing each logit tile once. The positives
    take ``p - 1 = -expm1(-ce)`` (not ``p - 1`` from ``p``, which cancels), the negatives ``p``."""
    checks.clip_inputs(img, loc, all_img, all_loc, scale, offset)
    b = img.shape[0]
    t = clip_tile(b, tile)
    c = grad / (2 * b)  # d loss / d logit, before the softmax factors
    pos = scale * (img * loc).sum(dim=1)
    w = c * (torch.expm1(-ce1) + torch.expm1(-ce2))  # d loss / d positive, both directions
    g_img = (w * scale)[:, None] * loc
    g_loc = (w * scale)[:, None] * img
    g_scale = (w * (img * loc).sum(dim=1)).sum()
    lse1, lse2 = pos + ce1, pos + ce2  # log-sum-exps over every key
    if all_img is None:
        for j in range(0, b, t):
            lj = loc[j:j + t]
            a = scale * (img @ lj.t())
            da = c * (torch.exp(a - lse1[:, None]) + torch.exp(a - lse2[j:j + t][None, :]))
            _positives(da, j, 0).zero_()
            g_img = g_img + scale * (da @ lj)
            g_loc[j:j + t] += scale * (da.t() @ img)
            g_scale = g_scale + (da * a).sum() / scale
        empty = img.new_empty(0)
        return g_img, g_loc, empty, empty, g_scale
    g_all_img, g_all_loc = torch.zeros_like(all_img), torch.zeros_like(all_loc)
    for j in range(0, all_loc.shape[0], t):
        # image -> location: queries img, keys all_loc; location -> image: queries loc, keys all_img
        da1, a1 = _softmax_tile(img, all_loc[j:j + t], lse1, scale, c)
        da2, a2 = _softmax_tile(loc, all_img[j:j + t], lse2, scale, c)
        _positives(da1, j, offset).zero_()
        _positives(da2, j, offset).zero_()
        g_img = g_img + scale * (da1 @ all_loc[j:j + t])
        g_loc = g_loc + scale * (da2 @ all_img[j:j + t])
        g_all_loc[j:j + t] = scale * (da1.t() @ img)
        g_all_img[j:j + t] = scale * (da2.t() @ loc)
        g_scale = g_scale + ((da1 * a1).sum() + (da2 * a2).sum()) / scale
    return g_img, g_loc, g_all_img, g_all_loc, g_scale


def _softmax_tile(q, keys, lse, scale, c):
    """``(c * softmax rows of the logit tile, the logit tile)`` for queries ``q`` and ``keys``."""
    a = scale * (q @ keys.t())
    return c * torch.exp(a - lse[:, None]), a


def quantize_int8(emb: torch.Tensor, threads: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The int8 output's per-point quantisation (``csrc/common/quantize_int8.h``): ``scale =
    max|e| / 127`` per row (1 for a zero row, NaN for a row with a NaN), ``code = round half to
    even(e / scale)`` (float32 division; 0 where that is NaN). ``threads`` is the CPU kernel's."""
    checks.quantize_input(emb, threads)
    # max and -min per row instead of abs(): no temporary of the input's size
    m = torch.maximum(emb.amax(dim=1), emb.amin(dim=1).neg_()) if emb.shape[1] else emb.new_zeros(emb.shape[0])
    scale = m.div_(127.0)
    scale.masked_fill_(scale == 0, 1.0)
    q = (emb / scale[:, None]).round_()
    q.masked_fill_(q.isnan(), 0.0)
    return q.to(torch.int8), scale
