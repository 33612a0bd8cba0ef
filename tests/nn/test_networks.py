"""The original's networks (satclip.nn.networks): the state_dict keys the original writes, its
structures (the MLP's shared hidden layer, FCNet's residual layers and bias-free class
embedding), outputs against the formulas written out here, dropout in training mode only."""

import pytest
import torch

from satclip.nn.networks import network

IN, OUT, H = 9, 5, 7


def test_state_dict_layouts():
    assert set(network("linear", IN, OUT).state_dict()) == {"weight", "bias"}
    mlp = network("mlp", IN, OUT, H, num_layers=2)
    assert set(mlp.state_dict()) == {f"features.{i}.{p}" for i in (0, 2, 4, 6) for p in ("weight", "bias")}
    siren = network("siren", IN, OUT, H, num_layers=2)
    assert set(siren.state_dict()) == {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                                       "last_layer.weight", "last_layer.bias"}
    fc = network("fcnet", IN, OUT, H)
    keys = set(fc.state_dict())
    assert "class_emb.weight" in keys and "class_emb.bias" not in keys
    assert keys == {"class_emb.weight", "feats.0.weight", "feats.0.bias"} | {
        f"feats.{i}.{w}.{p}" for i in range(2, 6) for w in ("w1", "w2") for p in ("weight", "bias")}


def test_mlp_hidden_layers_share_their_weights():
    mlp = network("mlp", IN, OUT, H, num_layers=3)
    f = mlp.features
    assert f[2] is f[4] is f[6] and f[2].weight.data_ptr() == mlp.state_dict()["features.6.weight"].data_ptr()
    x = torch.randn(4, IN, dtype=torch.float64)
    mlp = mlp.double()
    relu = torch.relu
    h = relu(x @ f[0].weight.t() + f[0].bias)
    for _ in range(3):
        h = relu(h @ f[2].weight.t() + f[2].bias)
    torch.testing.assert_close(mlp(x), h @ f[8].weight.t() + f[8].bias)
    # loading an original state_dict strictly: every repeated key present
    mlp.load_state_dict(mlp.state_dict(), strict=True)


def test_fcnet_formula_and_dropout():
    torch.manual_seed(0)
    fc = network("fcnet", IN, OUT, H).double().eval()
    x = torch.randn(6, IN, dtype=torch.float64)
    h = torch.relu(x @ fc.feats[0].weight.t() + fc.feats[0].bias)
    for r in fc.feats[2:]:
        h = h + torch.relu(torch.relu(h @ r.w1.weight.t() + r.w1.bias) @ r.w2.weight.t() + r.w2.bias)
    torch.testing.assert_close(fc(x), h @ fc.class_emb.weight.t())
    fc.train()
    assert not torch.allclose(fc(x), fc(x))  # dropout in training mode


def test_refusals():
    with pytest.raises(ValueError, match="unknown pe_type 'transformer'"):
        network("transformer", IN)
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        network("mlp", IN, OUT, 0)
