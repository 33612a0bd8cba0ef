"""The original SatCLIP code's other positional encodings (``le_type``), value for value, in
torch (``torch.compile``-friendly, float32 and float64; computed in float64 as the original's
numpy code does, then returned in the input's dtype). Input ``[N, 2]`` (lon, lat) in degrees.

| le_type       | width | value                                                                |
| ------------- | ----- | -------------------------------------------------------------------- |
| direct        | 2     | ``deg2rad(lon, lat) - pi``                                           |
| cartesian3d   | 3     | ``(cos lat cos lon, cos lat sin lon, sin lat)``                      |
| wrap          | 4     | ``(cos lon, sin lon, cos lat, sin lat)``                             |
| theory        | 6F    | sin/cos of the projections on three unit vectors 120 degrees apart   |
| grid          | 4F    | sin/cos of lon and lat times each frequency                          |
| spherec       | 6F    | sphere2vec "sphereC": sin lat, cos lat cos lon, cos lat sin lon       |
| spherecplus   | 12F   | sphereC + grid terms                                                 |
| spherem       | 10F   | sphere2vec "sphereM": scaled terms mixed with the unscaled angles    |
| spheremplus   | 16F   | sphereM + grid terms                                                 |

``F = frequency_num``; frequencies ``1 / (min_radius * (max_radius / min_radius) ** (f / (F - 1)))``
(the original's geometric initialisation). Quirks kept on purpose, as the released code has them:
the frequency-scaled encodings use the coordinates in degrees as if they were radians; every
sphere2vec value appears twice in a row; "theory" alternates sin and cos within each half of its
output, so for an odd F the second half starts with a cosine.
"""

from __future__ import annotations

import math

import torch
from torch import nn

FREQUENCY_ENCODINGS = ("theory", "grid", "spherec", "spherecplus", "spherem", "spheremplus")
PLAIN_ENCODINGS = ("direct", "cartesian3d", "wrap")
# values per frequency of each frequency-scaled encoding
_PER_FREQUENCY = {"theory": 6, "grid": 4, "spherec": 6, "spherecplus": 12, "spherem": 10, "spheremplus": 16}


def geometric_frequencies(frequency_num: int, min_radius: float, max_radius: float) -> torch.Tensor:
    """``[F]`` float64: the original's geometric frequency initialisation."""
    if frequency_num < 2:
        raise ValueError(f"frequency_num must be >= 2 (the geometric series needs two ends), got {frequency_num}")
    if not (min_radius > 0 and max_radius > 0):
        raise ValueError(f"min_radius and max_radius must be > 0, got min_radius={min_radius}, max_radius={max_radius}")
    if min_radius > max_radius:
        raise ValueError(f"min_radius ({min_radius}) must not exceed max_radius ({max_radius})")
    step = math.log(max_radius / min_radius) / (frequency_num - 1)
    return 1.0 / (min_radius * torch.exp(torch.arange(frequency_num, dtype=torch.float64) * step))


class _Encoding(nn.Module):
    embedding_dim: int

    def _in(self, lonlat: torch.Tensor) -> torch.Tensor:
        if lonlat.dim() != 2 or lonlat.shape[1] != 2:
            raise ValueError(f"expected lonlat of shape [N, 2] (lon, lat in degrees), got {list(lonlat.shape)}")
        return lonlat.to(torch.float64)


class Direct(_Encoding):
    embedding_dim = 2

    def forward(self, lonlat):
        return (torch.deg2rad(self._in(lonlat)) - math.pi).to(lonlat.dtype)


class Cartesian3D(_Encoding):
    embedding_dim = 3

    def forward(self, lonlat):
        r = torch.deg2rad(self._in(lonlat))
        lon, lat = r[:, 0], r[:, 1]
        return torch.stack([torch.cos(lon) * torch.cos(lat), torch.sin(lon) * torch.cos(lat), torch.sin(lat)],
                           1).to(lonlat.dtype)


class Wrap(_Encoding):
    embedding_dim = 4

    def forward(self, lonlat):
        r = torch.deg2rad(self._in(lonlat))
        lon, lat = r[:, 0], r[:, 1]
        return torch.stack([torch.cos(lon), torch.sin(lon), torch.cos(lat), torch.sin(lat)], 1).to(lonlat.dtype)


class FrequencyEncoding(_Encoding):
    """``theory``, ``grid``, ``spherec``, ``spherecplus``, ``spherem`` or ``spheremplus``."""

    def __init__(self, name: str, frequency_num: int = 16, min_radius: float = 1.0, max_radius: float = 360.0):
        super().__init__()
        if name not in FREQUENCY_ENCODINGS:
            raise ValueError(f"unknown le_type {name!r}; expected one of {FREQUENCY_ENCODINGS + PLAIN_ENCODINGS}")
        self.name, self.frequency_num = name, int(frequency_num)
        self.min_radius, self.max_radius = float(min_radius), float(max_radius)
        self.register_buffer("freq", geometric_frequencies(self.frequency_num, self.min_radius, self.max_radius),
                             persistent=False)  # not in the original's state_dict
        self.embedding_dim = _PER_FREQUENCY[name] * self.frequency_num

    def extra_repr(self) -> str:
        return (f"{self.name!r}, frequency_num={self.frequency_num}, min_radius={self.min_radius}, "
                f"max_radius={self.max_radius}")

    def forward(self, lonlat):
        x = self._in(lonlat)
        w = self.freq.to(device=x.device)  # [F]
        lon, lat = x[:, 0:1], x[:, 1:2]    # degrees, used as radians (as the original does)
        if self.name == "theory":
            return self._theory(lon, lat, w).to(lonlat.dtype)
        if self.name == "grid":
            # per coordinate (lon first), per frequency: sin, cos
            out = [torch.stack([torch.sin(c * w), torch.cos(c * w)], -1).reshape(x.shape[0], -1) for c in (lon, lat)]
            return torch.cat(out, 1).to(lonlat.dtype)
        s_lat, c_lat, s_lon, c_lon = torch.sin(lat * w), torch.cos(lat * w), torch.sin(lon * w), torch.cos(lon * w)
        if self.name == "spherec":
            terms = [s_lat, c_lat * c_lon, c_lat * s_lon]
        elif self.name == "spherecplus":
            terms = [s_lat, c_lat, s_lon, c_lon, c_lat * c_lon, c_lat * s_lon]
        else:  # sphereM: the scaled angles mixed with the unscaled ones
            c1lat, c1lon, s1lon = torch.cos(lat), torch.cos(lon), torch.sin(lon)
            mixed = [c_lat * c1lon, c1lat * c_lon, c_lat * s1lon, c1lat * s_lon]
            terms = ([s_lat] + mixed) if self.name == "spherem" else ([s_lat, c_lat, s_lon, c_lon] + mixed)
        # [N, F, terms, 2]: every value twice in a row, frequency-major
        t = torch.stack(terms, -1)
        return torch.stack([t, t], -1).reshape(x.shape[0], -1).to(lonlat.dtype)

    def _theory(self, lon, lat, w):
        n, f = lon.shape[0], self.frequency_num
        a = [lon, -0.5 * lon + math.sqrt(3) / 2 * lat, -0.5 * lon - math.sqrt(3) / 2 * lat]  # 3 projections
        angles = torch.stack([p * w for p in a for _ in (0, 1)], -1).reshape(n, -1)  # [N, F * 6], frequency-major
        # sin at even, cos at odd positions *within each half* of the output (the original
        # alternates along an axis of length 3F)
        pos = torch.arange(6 * f, device=angles.device) % (3 * f)
        return torch.where(pos % 2 == 0, torch.sin(angles), torch.cos(angles))


def positional_encoding(le_type: str, *, frequency_num: int = 16, min_radius: float = 1.0,
                        max_radius: float = 360.0) -> nn.Module:
    """The positional encoding the original builds for ``le_type`` (spherical harmonics excluded:
    :class:`satclip.nn.SphericalHarmonics`)."""
    plain = {"direct": Direct, "cartesian3d": Cartesian3D, "wrap": Wrap}
    if le_type in plain:
        return plain[le_type]()
    return FrequencyEncoding(le_type, frequency_num, min_radius, max_radius)
