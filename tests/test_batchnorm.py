import torch
from torch import nn

from engine.runtime.batchnorm import has_batchnorm, recalibrate_batchnorm


def test_recalibration_sets_exact_statistics_and_restores_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, bias=False), nn.BatchNorm2d(3))
    model.eval()
    x = (torch.rand(64, 1, 28, 28) * 255).to(torch.uint8)
    recalibrate_batchnorm(model, x, batch_size=16)
    assert not model.training
    with torch.no_grad():
        feats = model[0](x.float() / 255)
    bn = model[1]
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1
    assert has_batchnorm(model) and not has_batchnorm(nn.Linear(2, 2))
