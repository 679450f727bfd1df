"""The diagonal Fisher: exact per-sample gradients (fast hooks path and torch.func path) against an explicit loop."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.similarity.fisher import diagonal_fisher, fisher_layout, fisher_parameters, fisher_reference, sample_labels
from engine.similarity.probe import make_probe




class TinyNet(nn.Module):
    """Every layer kind the hooks path handles: padded, strided, dilated and 1×1 convs with and without bias, BN."""

    def __init__(self, num_classes: int = 3, extra: nn.Module | None = None):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
            nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(6, 5, 1, stride=2), extra if extra is not None else nn.Identity(), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(20, 8), nn.BatchNorm1d(8), nn.Tanh(),
        )
        self.head = nn.Linear(8, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


def _randomise_bn(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(5)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def _data(n=24, classes=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 1, 28, 28), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, classes, (n,), generator=gen)
    return x, y


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.fixture
def net():
    torch.manual_seed(0)
    m = TinyNet()
    _randomise_bn(m)
    return m.eval()


@pytest.mark.parametrize("mode", ["empirical", "model"])
@pytest.mark.parametrize("method", ["hooks", "vmap"])
def test_equals_explicit_per_sample_loop(net, mode, method):
    x, y = _data()
    fast = diagonal_fisher(net, x, y, mode=mode, batch_size=7, method=method,
                           generator=torch.Generator().manual_seed(11))
    ref = fisher_reference(net, x, y, mode=mode, generator=torch.Generator().manual_seed(11))
    assert fast.dtype == torch.float32 and fast.shape == ref.shape
    assert fast.shape[0] == sum(p.numel() for _, p in fisher_parameters(net))
    assert _rel(fast, ref) < 1e-5


def test_squared_mean_gradient_is_not_the_fisher(net):
    # Guards against the reference code's bug: squaring a minibatch-mean gradient is a different quantity.
    x, y = _data()
    params = [p for _, p in fisher_parameters(net)]
    from engine.data.tasks import to_input

    logp = torch.log_softmax(net(to_input(x)), 1).gather(1, y[:, None]).mean()
    wrong = torch.cat([g.reshape(-1) for g in torch.autograd.grad(logp, params)]).pow(2)
    assert _rel(wrong, diagonal_fisher(net, x, y)) > 0.1


def test_default_probe_fast_path_is_exact():
    torch.manual_seed(1)
    m = make_probe("cnn", 2)
    _randomise_bn(m)
    x, y = _data(n=12, classes=2)
    assert _rel(diagonal_fisher(m, x, y, method="hooks"), fisher_reference(m, x, y)) < 1e-5


def test_resnet18_with_inplace_relu_and_shortcuts_is_exact():
    torch.manual_seed(2)
    m = make_probe("resnet18", 2)
    _randomise_bn(m)
    x, y = _data(n=3, classes=2)
    assert _rel(diagonal_fisher(m, x, y, method="hooks"), fisher_reference(m, x, y)) < 1e-5


def test_layer_without_trick_falls_back_to_vmap_exactly():
    torch.manual_seed(3)
    m = TinyNet(extra=nn.GroupNorm(1, 5)).eval()
    x, y = _data(n=10)
    with pytest.raises(ValueError, match="per-sample trick"):
        diagonal_fisher(m, x, y, method="hooks")
    assert _rel(diagonal_fisher(m, x, y), fisher_reference(m, x, y)) < 1e-5


def test_head_excluded_by_default_and_padded_when_included(net):
    x, y = _data(n=8)
    body = diagonal_fisher(net, x, y)
    full = diagonal_fisher(net, x, y, include_head=True, head_classes=5)
    head_w, head_b = net.head.weight.numel(), net.head.bias.numel()
    assert full.shape[0] == body.shape[0] + (head_w + head_b) // 3 * 5
    assert torch.allclose(full[: body.shape[0]], body)
    # layout: head weight [3, 8] padded to [5, 8], then bias [3] padded to [5]
    w = full[body.shape[0]: body.shape[0] + 40].view(5, 8)
    assert torch.all(w[3:] == 0) and torch.all(w[:3] > 0)
    assert torch.all(full[-2:] == 0) and torch.all(full[-5:-2] > 0)
    assert [n for n, _ in fisher_layout(net, True, 5)][-2:] == ["head.weight", "head.bias"]
    ref = fisher_reference(net, x, y, include_head=True, head_classes=5)
    assert _rel(full, ref) < 1e-5
    with pytest.raises(ValueError, match="head_classes"):
        diagonal_fisher(net, x, y, include_head=True, head_classes=2)


def test_model_mode_labels_are_seeded_and_ignore_y(net):
    x, y = _data(n=16)
    a = diagonal_fisher(net, x, None, mode="model", generator=torch.Generator().manual_seed(4))
    b = diagonal_fisher(net, x, y, mode="model", generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    labels = sample_labels(net, x, torch.Generator().manual_seed(4))
    assert labels.shape == (16,) and labels.max() < 3
    assert _rel(diagonal_fisher(net, x, labels), a) < 1e-6


def test_eval_mode_and_requires_grad_restored(net):
    net.train()
    for p in net.head.parameters():
        p.requires_grad_(False)
    x, y = _data(n=6)
    diagonal_fisher(net, x, y)
    assert net.training
    assert not net.head.weight.requires_grad and net.body[0].weight.requires_grad
    assert all(p.grad is None for p in net.parameters())


def test_bad_input_is_named(net):
    x, y = _data(n=4)
    with pytest.raises(ValueError, match="mode"):
        diagonal_fisher(net, x, y, mode="true")
    with pytest.raises(ValueError, match="labels"):
        diagonal_fisher(net, x, None)
    with pytest.raises(ValueError, match="at least one sample"):
        diagonal_fisher(net, x[:0], y[:0])
    with pytest.raises(ValueError, match="4 samples but y has 3"):
        diagonal_fisher(net, x, y[:3])


def test_domain_fisher_equals_its_per_sample_definition_and_ignores_the_head(net):
    """feature_fisher: mean over samples of (∂(vᵢ·φ(xᵢ))/∂θ)², vᵢ drawn from the generator; the head never enters."""
    from engine.similarity.fisher import feature_fisher
    from engine.data.tasks import to_input

    x, _ = _data(n=10)
    fast = feature_fisher(net, x, generator=torch.Generator().manual_seed(3), batch_size=4)
    v = torch.randn(len(x), 8, generator=torch.Generator().manual_seed(3))
    params = fisher_parameters(net)
    ref = [torch.zeros_like(p) for _, p in params]
    for i in range(len(x)):
        net.zero_grad()
        (net.features(to_input(x[i:i + 1], "cpu"))[0] * v[i]).sum().backward()
        for r, (_, p) in zip(ref, params):
            r += p.grad.detach() ** 2
    ref = torch.cat([r.reshape(-1) for r in ref]) / len(x)
    assert fast.shape == (sum(n for _, n in fisher_layout(net)),)
    assert _rel(fast, ref) < 1e-5
    with torch.no_grad():
        net.head.weight.mul_(-3.0)
    again = feature_fisher(net, x, generator=torch.Generator().manual_seed(3), batch_size=7)
    assert _rel(again, fast) < 1e-5
    assert net.training is False
