"""Probe architectures and ε-representative training."""
from __future__ import annotations

import pytest
import torch

from engine.config import DictionarySection
from engine.data import Dataset
from engine.similarity.probe import load_probe, make_probe, probe_state, train_probe
from engine.runtime.reporting import JobStopped, RecordingReporter
from engine.data.tasks import TaskDef, build_task




def _separable_task(n_per_class=120, seed=0):
    """Two classes anyone can tell apart: bright top half vs bright bottom half, with noise."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 60, (2 * n_per_class, 1, 28, 28), generator=gen, dtype=torch.uint8)
    x[:n_per_class, :, :14] += 150
    x[n_per_class:, :, 14:] += 150
    y = torch.cat([torch.zeros(n_per_class), torch.ones(n_per_class)]).long()
    data = Dataset("toy", x, y, ("top", "bottom"))
    return build_task(TaskDef(name="toy-top", source="toy", positive=("top",)), data)


CFG = DictionarySection(max_epochs=2, batch_size=64, epsilon=0.05)


@pytest.mark.parametrize("arch,feat", [("cnn", 64), ("resnet18", 512)])
def test_probe_shapes_and_forward_is_head_of_features(arch, feat):
    torch.manual_seed(0)
    m = make_probe(arch, 3).eval()
    x = torch.rand(2, 1, 28, 28)
    f = m.features(x)
    assert f.shape == (2, feat)
    assert isinstance(m.head, torch.nn.Linear) and m.head.out_features == 3
    assert torch.allclose(m(x), m.head(f))


def test_make_probe_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown probe architecture 'vgg'"):
        make_probe("vgg", 2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        make_probe("cnn", 1)


def test_training_reaches_epsilon_and_reports():
    task = _separable_task()
    rep = RecordingReporter()
    result = train_probe(task, CFG, seed=3, device="cpu", reporter=rep)
    assert result.val_acc >= 0.95 and result.representative
    assert 1 <= result.epochs <= 2 and result.seconds > 0
    progress = [d for e, d in rep.events if e == "probe_progress"]
    assert len(progress) == result.epochs
    assert progress[0]["task_id"] == task.id and progress[0]["max_epochs"] == 2
    assert not result.model.training
    assert task.test_reads == 0


def test_same_seed_same_weights_and_global_rng_untouched():
    task = _separable_task()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = probe_state(train_probe(task, CFG, seed=7).model)
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = probe_state(train_probe(task, CFG, seed=7).model)
    c = probe_state(train_probe(task, CFG, seed=8).model)
    assert all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)


def test_not_representative_is_flagged_and_best_weights_kept():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (200, 1, 28, 28), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, 2, (200,), generator=gen)   # pure noise labels: nothing to learn
    task = build_task(TaskDef(name="noise", source="n", positive=("b",), balance=False), Dataset("n", x, y, ("a", "b")))
    rep = RecordingReporter()
    result = train_probe(task, DictionarySection(max_epochs=2, batch_size=64), seed=0, reporter=rep)
    assert not result.representative and result.epochs == 2
    accs = [d["val_acc"] for e, d in rep.events if e == "probe_progress"]
    assert result.val_acc == max(accs)
    from engine.similarity.probe import accuracy

    assert accuracy(result.model, task.val_x, task.val_y) == pytest.approx(result.val_acc)


def test_state_round_trip():
    torch.manual_seed(0)
    m = make_probe("cnn", 4)
    state = probe_state(m)
    m2 = load_probe("cnn", 4, state)
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(m.eval()(x), m2(x))
    with pytest.raises(ValueError, match="does not match"):
        load_probe("cnn", 5, state)


def test_stop_request_interrupts_training():
    task = _separable_task()
    rep = RecordingReporter()
    rep.stop()
    with pytest.raises(JobStopped):
        train_probe(task, CFG, seed=0, reporter=rep)



def test_min_epochs_gives_every_probe_the_same_budget():
    task = _separable_task()
    early = train_probe(task, DictionarySection(max_epochs=4, batch_size=64, epsilon=0.3), seed=0)
    equal = train_probe(task, DictionarySection(max_epochs=4, min_epochs=3, batch_size=64, epsilon=0.3), seed=0)
    assert early.epochs < 3 and equal.epochs == 3 and equal.representative
    with pytest.raises(ValueError, match="min_epochs"):
        train_probe(task, DictionarySection(max_epochs=2, min_epochs=3), seed=0)
