import pytest
import torch

from engine.space.genotype import Cell, Genotype
from engine.space.network import Network, build_network, reduction_layers
from engine.space.ops import OPS, PARAMETER_FREE


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [14, 7])
def test_every_op_keeps_channels_and_strides_spatially(name, stride, size):
    op = OPS[name](4, stride, True)
    x = torch.randn(2, 4, size, size)
    y = op(x)
    expected = size if stride == 1 else (size + 1) // 2
    assert y.shape == (2, 4, expected, expected)
    if name == "none":
        assert not y.any()
    if name == "skip_connect" and stride == 1:
        assert torch.equal(y, x)


def test_parameter_free_ops_have_no_parameters_at_stride_one():
    for name in PARAMETER_FREE:
        assert sum(p.numel() for p in OPS[name](4, 1, True).parameters()) == 0
    for name in set(OPS) - PARAMETER_FREE:
        assert sum(p.numel() for p in OPS[name](4, 1, True).parameters()) > 0


def test_reductions_sit_at_one_and_two_thirds():
    assert reduction_layers(3) == {1, 2}
    assert reduction_layers(5) == {1, 3}
    assert reduction_layers(8) == {2, 5}


def _genotype(layers, channels=8):
    normal = Cell(((("sep_conv_3x3", 0), ("skip_connect", 1)),
                   (("dil_conv_5x5", 2), ("none", 0)),
                   (("conv_7x1_1x7", 3), ("avg_pool_3x3", 1))), concat=(3, 4))
    reduce = Cell(((("max_pool_3x3", 0), ("skip_connect", 1)),
                   (("sep_conv_5x5", 1), ("dil_conv_3x3", 2)),
                   (("sep_conv_7x7", 3), ("avg_pool_3x3", 0))))
    return Genotype(normal, reduce, channels=channels, layers=layers)


@pytest.mark.parametrize("layers", [3, 5])
def test_network_forward_on_28x28(layers):
    g = _genotype(layers)
    net = Network(g, num_classes=5, in_channels=1)
    out = net(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 5) and torch.isfinite(out).all()
    reductions = [cell.reduction for cell in net.cells]
    assert len(net.cells) == layers and sum(reductions) == 2
    # channels double at each reduction; the head reads the last cell's concat (reduce: 3 nodes, normal: 2) * 4C
    last = g.reduce if layers == 3 else g.normal
    assert net.classifier.in_features == len(last.concat) * 4 * g.channels
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_network_takes_other_input_channels_and_batch_sizes():
    net = build_network(_genotype(3), num_classes=2, in_channels=3, seed=0).eval()
    assert net(torch.rand(1, 3, 28, 28)).shape == (1, 2)
    assert net(torch.rand(4, 3, 32, 32)).shape == (4, 2)


def test_a_seed_fixes_the_network_and_eval_mode_treats_each_sample_alone():
    """The same genotype and seed build the same network (another seed, other weights); in eval mode a sample's
    output does not depend on the batch it is in (batch-norm uses its running statistics, dropout is off)."""
    a, b = build_network(_genotype(3), 2, seed=1), build_network(_genotype(3), 2, seed=1)
    other = build_network(_genotype(3), 2, seed=2)
    for (name, p), q, r in zip(a.state_dict().items(), b.state_dict().values(), other.state_dict().values()):
        assert torch.equal(p, q), name
    assert any(not torch.equal(p, r) for p, r in zip(a.parameters(), other.parameters()))
    x = torch.rand(4, 1, 28, 28)
    a.train()
    with torch.no_grad():
        a(torch.rand(8, 1, 28, 28) * 3)          # move the running statistics away from their initial values
    a.eval()
    with torch.no_grad():
        together = a(x)
        alone = torch.cat([a(x[i:i + 1]) for i in range(4)])
        torch.testing.assert_close(alone, together)
        assert not torch.allclose(together, b.eval()(x))   # the running statistics moved: eval used them
