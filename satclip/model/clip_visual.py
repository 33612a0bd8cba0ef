"""The original SatCLIP's two CLIP-style image encoders, for checkpoints trained with them.

The original builds them when ``vision_layers`` is not a ``moco_*`` name:

* a tuple / list of four ints -> :class:`ModifiedResNet` (CLIP's ResNet: a three-convolution
  stem with average pooling, anti-aliased strided bottlenecks, attention pooling at the end),
  ``heads = vision_width * 32 // 64``;
* an int -> :class:`VisionTransformer` (CLIP's ViT: patch convolution, class token, pre- and
  post-LayerNorm, QuickGELU MLPs, a ``proj`` matrix), ``heads = vision_width // 64``.

Parameter names and shapes are the original's (``visual.conv1.weight``,
``visual.layer1.0.downsample.0.weight``, ``visual.attnpool.q_proj.weight``,
``visual.transformer.resblocks.0.attn.in_proj_weight``, ``visual.proj`` ...), so the
``model.visual.*`` tensors of such a checkpoint load with strict key matching, and the
initialisation follows the original (:func:`init_like_original`). Both take
``[B, in_channels, R, R]`` with ``R = image_resolution`` (the positional embeddings are sized for
it) and return ``[B, embed_dim]``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> (average pool when strided) -> 1x1 expanding by 4, with a residual that is
    average-pooled then projected when the shape changes (no strided convolutions)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu3 = nn.ReLU(inplace=True)
        self.downsample = None
        if stride > 1 or inplanes != out:
            # keys "-1" (pool, no weights), "0" (conv), "1" (norm): the original's names
            self.downsample = nn.Sequential(OrderedDict([("-1", nn.AvgPool2d(stride)),
                                                         ("0", nn.Conv2d(inplanes, out, 1, bias=False)),
                                                         ("1", nn.BatchNorm2d(out))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.relu2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(self.avgpool(y)))
        return self.relu3(y + (x if self.downsample is None else self.downsample(x)))


class AttentionPool2d(nn.Module):
    """Multi-head attention of one query (the spatial mean, plus its positional embedding) over
    the mean and every position of the last feature map."""

    def __init__(self, spacial_dim: int, embed_dim: int, num_heads: int, output_dim: int | None = None):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spacial_dim ** 2 + 1, embed_dim) / embed_dim ** 0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim or embed_dim)
        self.num_heads = num_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)                        # [B, HW, C]
        tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], 1)  # [B, HW + 1, C]
        if tokens.shape[1] != self.positional_embedding.shape[0]:
            raise ValueError(f"the attention pool is sized for a {self.positional_embedding.shape[0] - 1}-position "
                             f"feature map, got {tokens.shape[1] - 1}: the image is not at the model's resolution")
        tokens = tokens + self.positional_embedding.to(tokens.dtype)
        b, n, c = tokens.shape
        h = self.num_heads

        def heads(t):  # [B, n, C] -> [B, h, n, C / h]
            return t.view(b, -1, h, c // h).transpose(1, 2)

        q = heads(self.q_proj(tokens[:, :1]))
        k, v = heads(self.k_proj(tokens)), heads(self.v_proj(tokens))
        pooled = F.scaled_dot_product_attention(q, k, v)               # [B, h, 1, C / h]
        return self.c_proj(pooled.transpose(1, 2).reshape(b, c))


class ModifiedResNet(nn.Module):
    """CLIP's ResNet. ``layers``: blocks per stage (e.g. ``(3, 4, 6, 3)`` for a ResNet-50);
    ``width``: stem width (the feature map ends with ``32 * width`` channels)."""

    def __init__(self, layers, output_dim: int, heads: int, input_resolution: int = 224, width: int = 64,
                 in_channels: int = 3):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"a ModifiedResNet has four stages; vision_layers={tuple(layers)}")
        self.output_dim, self.input_resolution = output_dim, input_resolution
        self.conv1 = nn.Conv2d(in_channels, width // 2, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width // 2, width // 2, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width // 2, width, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)
        inplanes = width
        for i, blocks in enumerate(layers):
            planes, stride = width * 2 ** i, (1 if i == 0 else 2)
            stage = [Bottleneck(inplanes, planes, stride)]
            inplanes = planes * Bottleneck.expansion
            stage += [Bottleneck(inplanes, planes) for _ in range(1, int(blocks))]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.attnpool = AttentionPool2d(input_resolution // 32, width * 32, heads, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.conv1.weight.dtype)
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.avgpool(self.relu3(self.bn3(self.conv3(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype (as CLIP, for half precision)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d_model, d_model * 4)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(d_model * 4, d_model))]))
        self.ln_2 = LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [L, B, D] (sequence first)
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    """CLIP's ViT: ``layers`` blocks of ``width`` channels on ``patch_size`` patches; the class
    token's final state, layer-normed, times ``proj`` is the embedding."""

    def __init__(self, input_resolution: int, patch_size: int, width: int, layers: int, heads: int,
                 in_channels: int, output_dim: int):
        super().__init__()
        if input_resolution % patch_size:
            raise ValueError(f"image_resolution {input_resolution} is not a multiple of vision_patch_size {patch_size}")
        self.input_resolution, self.output_dim = input_resolution, output_dim
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x.to(self.conv1.weight.dtype)).flatten(2).transpose(1, 2)  # [B, grid^2, width]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], 1)
        if x.shape[1] != self.positional_embedding.shape[0]:
            raise ValueError(f"this ViT takes {self.input_resolution} x {self.input_resolution} images "
                             f"({self.positional_embedding.shape[0] - 1} patches), got {x.shape[1] - 1} patches")
        x = self.ln_pre(x + self.positional_embedding.to(x.dtype))
        x = self.transformer(x.transpose(0, 1)).transpose(0, 1)
        return self.ln_post(x[:, 0]) @ self.proj


def build_clip_visual(vision_layers, embed_dim: int, image_resolution: int, vision_width: int,
                      vision_patch_size: int, in_channels: int) -> nn.Module:
    """The original's choice: a sequence of four ints -> :class:`ModifiedResNet`, an int ->
    :class:`VisionTransformer`; initialised as the original (:func:`init_like_original`)."""
    if isinstance(vision_layers, (tuple, list)):
        visual = ModifiedResNet(tuple(int(v) for v in vision_layers), embed_dim, vision_width * 32 // 64,
                                image_resolution, vision_width, in_channels)
    elif isinstance(vision_layers, int) and not isinstance(vision_layers, bool) and vision_layers > 0:
        if vision_width < 64:
            raise ValueError(f"vision_width must be >= 64 (heads = vision_width // 64), got {vision_width}")
        visual = VisionTransformer(image_resolution, vision_patch_size, vision_width, vision_layers,
                                   vision_width // 64, in_channels, embed_dim)
    else:
        raise ValueError(f"vision_layers for a CLIP-style encoder is four ints (ModifiedResNet) or a positive int "
                         f"(VisionTransformer), got {vision_layers!r}")
    init_like_original(visual)
    return visual


def init_like_original(visual: nn.Module) -> None:
    """The original's ``initialize_parameters``: for a ModifiedResNet, normal(0, C^-1/2) query,
    key, value and output projections of the attention pool and zero ``bn3`` gains in every
    residual block (each block starts as the identity); a ViT keeps its constructor's init."""
    if not isinstance(visual, ModifiedResNet):
        return
    std = visual.attnpool.c_proj.in_features ** -0.5
    for proj in (visual.attnpool.q_proj, visual.attnpool.k_proj, visual.attnpool.v_proj, visual.attnpool.c_proj):
        nn.init.normal_(proj.weight, std=std)
    for stage in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
        for name, param in stage.named_parameters():
            if name.endswith("bn3.weight"):
                nn.init.zeros_(param)
