"""Task-data pairs: relabelling, balancing, limits, disjoint deterministic splits, batching."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import SourceSection
from engine.data import Dataset, get_source
from engine.data.tasks import TaskDef, TaskError, batches, build_task, task_id, to_input


def tagged_dataset(counts: list[int], classes: tuple[str, ...] | None = None) -> Dataset:
    """Each image carries its own index in its first two pixels, so splits can be traced back to samples."""
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    n = len(labels)
    images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    idx = torch.arange(n)
    images[:, 0, 0, 0] = (idx % 256).to(torch.uint8)
    images[:, 0, 0, 1] = (idx // 256).to(torch.uint8)
    classes = classes or tuple(f"c{i}" for i in range(len(counts)))
    return Dataset("tagged", images, torch.from_numpy(labels).long(), classes)


def origin(x: torch.Tensor) -> np.ndarray:
    return (x[:, 0, 0, 0].long() + 256 * x[:, 0, 0, 1].long()).numpy()


def all_splits(task) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {"train": (task.train_x, task.train_y), "val": (task.val_x, task.val_y), "test": task.test_split()}


def test_splits_are_disjoint_and_cover_the_task():
    data = tagged_dataset([100, 100, 100, 100])
    task = build_task(TaskDef("mc", "tagged", classes=("c0", "c1", "c2", "c3")), data)
    ids = {k: origin(x) for k, (x, _) in all_splits(task).items()}
    assert all(len(set(v)) == len(v) for v in ids.values())
    assert not set(ids["train"]) & set(ids["val"]) and not set(ids["train"]) & set(ids["test"])
    assert not set(ids["val"]) & set(ids["test"])
    assert sorted(np.concatenate(list(ids.values()))) == list(range(400))
    assert task.sizes == {"train": 288, "val": 32, "test": 80}          # test 20 %, then val 10 % of the rest
    source_labels = data.labels.numpy()
    for x, y in all_splits(task).values():                              # labels follow their images
        assert np.array_equal(source_labels[origin(x)], y.numpy())


def test_binary_is_balanced_and_negatives_spread_over_the_other_classes():
    data = tagged_dataset([30, 60, 60, 60, 60])
    task = build_task(TaskDef("is0", "tagged", positive=("c0",)), data)
    assert task.class_names == ("rest", "c0") and task.num_classes == 2
    ys = torch.cat([y for _, y in all_splits(task).values()])
    assert (ys == 1).sum() == 30 and (ys == 0).sum() == 30
    ids = np.concatenate([origin(x)[y.numpy() == 0] for x, y in all_splits(task).values()])
    negatives_per_class = np.bincount(data.labels.numpy()[ids], minlength=5)[1:]
    assert negatives_per_class.max() - negatives_per_class.min() <= 1


def test_binary_natural_ratio_and_multiple_positives():
    data = tagged_dataset([20, 20, 60, 60])
    task = build_task(TaskDef("lo", "tagged", positive=("c0", "c1"), balance=False), data)
    assert task.class_names == ("rest", "c0+c1")
    counts = task.summary()["class_counts"]
    assert sum(c["c0+c1"] for c in counts.values()) == 40 and sum(c["rest"] for c in counts.values()) == 120


def test_balancing_the_other_way_when_negatives_are_few():
    task = build_task(TaskDef("most", "tagged", positive=("c1", "c2")), tagged_dataset([15, 50, 50]))
    counts = task.summary()["class_counts"]
    assert sum(c["rest"] for c in counts.values()) == 15 == sum(c["c1+c2"] for c in counts.values())


def test_multiclass_with_a_balanced_other():
    data = tagged_dataset([40, 40, 100, 100, 100])
    task = build_task(TaskDef("mc", "tagged", classes=("c1", "c0"), other=True), data)
    assert task.class_names == ("c1", "c0", "other")
    totals = np.sum([list(c.values()) for c in task.summary()["class_counts"].values()], axis=0)
    assert totals.tolist() == [40, 40, 40]
    x, y = task.train_x, task.train_y                                 # class order follows the definition
    assert set(data.labels.numpy()[origin(x)[y.numpy() == 0]]) == {1}
    unbalanced = build_task(TaskDef("mc2", "tagged", classes=("c0", "c1"), other=True, balance=False), data)
    assert sum(unbalanced.sizes.values()) == 380


def test_limit_keeps_the_label_mix():
    task = build_task(TaskDef("lim", "tagged", classes=("c0", "c1"), limit=50), tagged_dataset([300, 100]))
    totals = np.sum([list(c.values()) for c in task.summary()["class_counts"].values()], axis=0)
    assert totals.tolist() == [38, 12] or totals.tolist() == [37, 13]


def test_deterministic_from_the_seed():
    data = tagged_dataset([50, 50, 50])
    a = build_task(TaskDef("t", "tagged", positive=("c2",), seed=3), data)
    b = build_task(TaskDef("t", "tagged", positive=("c2",), seed=3), data)
    c = build_task(TaskDef("t", "tagged", positive=("c2",), seed=4), data)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)
    assert torch.equal(a.test_split()[0], b.test_split()[0])
    assert not np.array_equal(np.sort(origin(a.test_split()[0])), np.sort(origin(c.test_split()[0])))


def test_task_id_is_a_stable_hash_of_the_definition():
    d = TaskDef("is3", "mnist-5k", positive=("3",))
    assert task_id(d) == "1a2fdcb93e8a"                       # must not change between versions or processes
    assert task_id(TaskDef("is3", "mnist-5k", positive=("3",))) == task_id(d)
    assert task_id(TaskDef("is3", "mnist-5k", positive=("3",), seed=1)) != task_id(d)
    assert build_task(TaskDef("t", "tagged", positive=("c0",)), tagged_dataset([20, 20])).id == task_id(
        TaskDef("t", "tagged", positive=("c0",)))


def test_unknown_class_names_the_task_and_the_valid_classes():
    with pytest.raises(TaskError, match=r"task 'bad'.*class 'seven'.*valid classes: c0, c1"):
        build_task(TaskDef("bad", "tagged", positive=("seven",)), tagged_dataset([10, 10]))
    with pytest.raises(TaskError, match="exactly one of"):
        build_task(TaskDef("both", "tagged", positive=("c0",), classes=("c1",)), tagged_dataset([10, 10]))
    with pytest.raises(TaskError, match="nothing is left for 'rest'"):
        build_task(TaskDef("all", "tagged", positive=("c0", "c1")), tagged_dataset([10, 10]))
    with pytest.raises(TaskError, match="the val split is empty"):
        build_task(TaskDef("tiny", "tagged", positive=("c0",)), tagged_dataset([2, 2]))


def test_test_split_reads_are_counted_and_summary_is_not_one():
    task = build_task(TaskDef("t", "tagged", positive=("c0",)), tagged_dataset([30, 30]))
    assert task.test_reads == 0
    summary = task.summary()
    assert task.test_reads == 0 and summary["sizes"]["test"] == 12 and summary["kind"] == "binary"
    assert not hasattr(task, "test_x")
    task.test_split()
    task.test_split()
    assert task.test_reads == 2


def test_build_task_from_a_configured_source(tmp_path):
    sources = {"shapes": SourceSection("shapes", "sketches", {"per_class": 30})}
    task = build_task(TaskDef("moon", "shapes", positive=("moon",)), get_source("shapes", sources, tmp_path))
    assert task.sizes == {"train": 44, "val": 4, "test": 12}      # per label: 6 test, 2 val, 22 train
    assert task.train_x.dtype == torch.uint8 and task.train_x.shape[1:] == (1, 28, 28)


def test_to_input_and_batches():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 1, 28, 28).contiguous()
    f = to_input(x, "cpu")
    assert f.dtype == torch.float32 and torch.allclose(f[:, 0, 0, 0], torch.tensor([0.0, 0.2, 1.0]))
    assert x.dtype == torch.uint8                                  # the stored images are untouched

    xs, ys = torch.arange(10).view(10, 1), torch.arange(10)
    plain = list(batches(xs, ys, 4, shuffle=False))
    assert [len(b) for b, _ in plain] == [4, 4, 2] and torch.equal(torch.cat([y for _, y in plain]), ys)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    shuffled = list(batches(xs, ys, 3, shuffle=True, generator=g1))
    again = list(batches(xs, ys, 3, shuffle=True, generator=g2))
    order = torch.cat([y for _, y in shuffled])
    assert sorted(order.tolist()) == list(range(10)) and not torch.equal(order, ys)
    assert all(torch.equal(a[0], a[1].view(-1, 1)) for a in shuffled)          # x and y stay paired
    assert torch.equal(order, torch.cat([y for _, y in again]))
    with pytest.raises(ValueError, match="batch_size"):
        list(batches(xs, ys, 0))


def test_config_and_build_task_apply_the_same_definition_rules(tmp_path):
    """One set of rules: a limit the config refuses is refused by build_task (and so by `tasks add` and the UI)."""
    from engine.config import ConfigError, load_config

    path = tmp_path / "t.toml"
    path.write_text('[[tasks]]\nname = "few"\nsource = "tagged"\npositive = ["c0"]\nlimit = 5\n')
    with pytest.raises(ConfigError, match="at least 10"):
        load_config(path, {}, check_classes=False)
    with pytest.raises(TaskError, match="task 'few': limit must be at least 10"):
        build_task(TaskDef("few", "tagged", positive=("c0",), limit=5), tagged_dataset([30, 30]))
    assert build_task(TaskDef("ok", "tagged", positive=("c0",), limit=40), tagged_dataset([30, 30])).train_x.shape[0]
