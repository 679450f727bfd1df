"""The stroke-sketch generator: deterministic, varied, anti-aliased, and its shapes tell apart."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import SourceSection
from engine.data import SourceError, get_source
from engine.data.sketches import SHAPE_NAMES, generate, render_shape


def test_at_least_the_required_shapes():
    required = {"circle", "square", "triangle", "star", "moon", "cross", "heart", "spiral"}
    assert required <= set(SHAPE_NAMES)


def test_same_seed_same_images_other_seed_other_images():
    a, ya, names = generate(per_class=20, seed=7)
    b, yb, _ = generate(per_class=20, seed=7)
    c, _, _ = generate(per_class=20, seed=8)
    assert a.dtype == np.uint8 and a.shape == (20 * len(SHAPE_NAMES), 28, 28)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert names == SHAPE_NAMES and np.bincount(ya).tolist() == [20] * len(SHAPE_NAMES)
    assert (a != c).mean() > 0.05


def test_a_shape_does_not_depend_on_the_other_shapes_asked_for():
    full, y, names = generate(per_class=6, seed=1)
    moons, _, _ = generate(["moon"], per_class=6, seed=1)
    assert np.array_equal(full[y == names.index("moon")], moons)


def test_every_sketch_has_ink_inside_the_frame_with_soft_edges():
    images, _, _ = generate(per_class=40, seed=0)
    assert (images.reshape(len(images), -1).max(axis=1) > 150).all()       # nothing blank
    assert images[:, 0, :].max() < 60 and images[:, -1, :].max() < 60     # pushed back inside the frame
    assert images[:, :, 0].max() < 60 and images[:, :, -1].max() < 60
    ink = images[images > 0]
    assert 0.3 < np.mean(ink < 200) < 0.9                                  # anti-aliased edges, solid cores
    per_image_ink = (images > 64).reshape(len(images), -1).mean(axis=1)
    assert 0.03 < per_image_ink.min() and per_image_ink.max() < 0.5       # strokes, not blobs


def test_samples_vary_within_a_class():
    circles = render_shape("circle", 30, seed=0).reshape(30, -1).astype(float)
    distances = np.linalg.norm(circles[:, None] - circles[None], axis=-1)
    assert distances[np.triu_indices(30, 1)].min() > 100        # no two alike


def test_shapes_are_distinguishable_by_a_nearest_centroid_rule():
    x, y, _ = generate(per_class=60, seed=3)
    x = x.reshape(len(x), -1).astype(np.float64) / 255
    train = np.concatenate([np.flatnonzero(y == k)[:40] for k in range(len(SHAPE_NAMES))])
    test = np.setdiff1d(np.arange(len(y)), train)
    centroids = np.stack([x[train][y[train] == k].mean(axis=0) for k in range(len(SHAPE_NAMES))])
    predicted = ((x[test][:, None] - centroids[None]) ** 2).sum(-1).argmin(axis=1)
    assert (predicted == y[test]).mean() > 0.5                   # chance is 0.1


def test_unknown_shape():
    with pytest.raises(KeyError, match="unknown sketch shape 'dog'"):
        generate(["circle", "dog"], per_class=2)


def test_sketches_source_options(tmp_path):
    sources = {"s": SourceSection("s", "sketches", {"per_class": 12, "seed": 5, "classes": ["star", "heart"]})}
    data = get_source("s", sources, tmp_path).load()
    assert data.classes == ("star", "heart") and data.class_counts() == {"star": 12, "heart": 12}
    assert torch.equal(data.images[:12, 0], torch.from_numpy(render_shape("star", 12, seed=5)))
    with pytest.raises(SourceError, match="'per_class' must be at least 1"):
        get_source("s", {"s": SourceSection("s", "sketches", {"per_class": 0})})
