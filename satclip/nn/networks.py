"""The original SatCLIP code's networks (``pe_type``) with their exact ``state_dict`` layouts and
structures, quirks included, so that a checkpoint written by the original loads strictly:

* ``linear``: ``nn.Linear(input_dim, num_classes)`` (keys ``weight``, ``bias``).
* ``mlp``: ``features`` = Linear(in, h), ReLU, then ``[Linear(h, h), ReLU] * num_layers``, then
  Linear(h, out). The original builds the hidden part by repeating one Python list, so all its
  hidden layers are *one* module with shared weights, registered ``num_layers`` times (keys
  ``features.2.*``, ``features.4.*``, ... hold the same tensors); output layer
  ``features.{2 + 2 * num_layers}``.
* ``siren``: :class:`satclip.nn.SirenNet` (``layers.{i}``, ``last_layer``).
* ``fcnet``: ``feats`` = Linear(in, h), ReLU, four residual layers (``w1``, ReLU, dropout p = 0.5,
  ``w2``, ReLU, plus the input), then ``class_emb`` = Linear(h, out) without bias.

Dropout (FCNet's residual layers, SIREN's hidden layers) acts in training mode only.
"""

from __future__ import annotations

from torch import nn

from .siren import SirenNet

NETWORKS = ("linear", "mlp", "siren", "fcnet")


class MLP(nn.Module):
    def __init__(self, input_dim: int, dim_hidden: int, num_layers: int, out_dims: int):
        super().__init__()
        hidden = [nn.Linear(dim_hidden, dim_hidden), nn.ReLU()]  # one module, repeated: shared weights
        self.features = nn.Sequential(nn.Linear(input_dim, dim_hidden), nn.ReLU(), *(hidden * num_layers),
                                      nn.Linear(dim_hidden, out_dims))

    def forward(self, x):
        return self.features(x)


class ResLayer(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.nonlin1, self.nonlin2 = nn.ReLU(), nn.ReLU()
        self.dropout1 = nn.Dropout()
        self.w1, self.w2 = nn.Linear(size, size), nn.Linear(size, size)

    def forward(self, x):
        return x + self.nonlin2(self.w2(self.dropout1(self.nonlin1(self.w1(x)))))


class FCNet(nn.Module):
    def __init__(self, num_inputs: int, num_classes: int, dim_hidden: int):
        super().__init__()
        self.class_emb = nn.Linear(dim_hidden, num_classes, bias=False)
        self.feats = nn.Sequential(nn.Linear(num_inputs, dim_hidden), nn.ReLU(),
                                   *(ResLayer(dim_hidden) for _ in range(4)))

    def forward(self, x):
        return self.class_emb(self.feats(x))


def network(pe_type: str, input_dim: int, num_classes: int = 256, dim_hidden: int = 256,
            num_layers: int = 2) -> nn.Module:
    """The network the original builds for ``pe_type`` (its ``get_neural_network``)."""
    for name, v in (("input size", input_dim), ("embed_dim", num_classes), ("capacity", dim_hidden)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if pe_type == "linear":
        return nn.Linear(input_dim, num_classes)
    if pe_type == "mlp":
        return MLP(input_dim, dim_hidden, num_layers, num_classes)
    if pe_type == "siren":
        return SirenNet(input_dim, dim_hidden, num_classes, num_layers)
    if pe_type == "fcnet":
        return FCNet(input_dim, num_classes, dim_hidden)
    raise ValueError(f"unknown pe_type {pe_type!r}; expected one of {NETWORKS}")
