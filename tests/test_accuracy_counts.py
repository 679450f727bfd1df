"""Accuracy is a count of correct predictions, not a float32 mean: 72 of 80 right is exactly 0.9 and passes a 0.9
(= 1 − ε with ε = 0.1) threshold. In float32 it was 0.89999998 and failed it."""
from __future__ import annotations

import types

import torch
from torch import nn

from engine.config import TransferSection
from engine.search.training import evaluate
from engine.similarity.probe import accuracy
from engine.similarity.transfer import transfer_distance


class OneHotProbe(nn.Module):
    """Predicts the class whose input column is largest: its head is the identity."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(2))
            self.head.bias.zero_()

    def features(self, x):
        return x.flatten(1)

    def forward(self, x):
        return self.head(self.features(x))


def _data():
    y = torch.tensor([0, 1] * 40)
    predicted = y.clone()
    predicted[:8] = 1 - predicted[:8]  # 8 wrong, 72 right
    return nn.functional.one_hot(predicted, 2).float(), y


def test_72_of_80_is_exactly_0_9_in_every_accuracy():
    x, y = _data()
    model = OneHotProbe()
    assert accuracy(model, x, y) == 0.9
    assert evaluate(model, x, y, torch.device("cpu"))[1] == 0.9


def test_transfer_adequacy_at_exactly_one_minus_epsilon():
    x, y = _data()
    task = types.SimpleNamespace(train_x=x, train_y=y, val_x=x, val_y=y, definition=types.SimpleNamespace(name="t"))
    result = transfer_distance(OneHotProbe(), OneHotProbe(), task, TransferSection(epsilon=0.1), device="cpu", seed=0,
                               same_task=True)
    assert result.val_acc == 0.9 and result.adequate
