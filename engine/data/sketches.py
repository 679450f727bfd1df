"""Hand-drawn-looking stroke sketches of simple shapes, generated deterministically from a seed.

An offline stand-in for Quick, Draw!. Each shape is a few strokes (polylines in a [-1, 1] box) that get jittered
vertices, a smooth wobble, a random affine pose (rotation, scale, stretch, shear, flip, position) and a random pen
thickness and pressure. Strokes are rasterised by summing Gaussian footprints of densely spaced points, weighted by
the arc length each point stands for, so the stroke's brightness does not depend on how many points it has; the
Gaussian edge gives anti-aliasing for free. All of it is vectorised over the samples of a class.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

SIZE = 28
Strokes = list[np.ndarray]     # each [n, k, 2]: n samples, k points, (x, y) with y pointing down


def _polyline(vertices: np.ndarray, points_per_edge: int) -> np.ndarray:
    """Dense points along a polyline, vertices [n, v, 2] -> [n, (v-1)*points_per_edge + 1, 2]."""
    t = np.linspace(0.0, 1.0, points_per_edge, endpoint=False)[None, None, :, None]
    a, b = vertices[:, :-1, None, :], vertices[:, 1:, None, :]
    seg = (a + (b - a) * t).reshape(vertices.shape[0], -1, 2)
    return np.concatenate([seg, vertices[:, -1:, :]], axis=1)


def _closed(vertices: np.ndarray, points_per_edge: int) -> np.ndarray:
    return _polyline(np.concatenate([vertices, vertices[:, :1]], axis=1), points_per_edge)


def _jitter(rng: np.random.Generator, vertices: np.ndarray, amount: float) -> np.ndarray:
    return vertices + rng.normal(0.0, amount, vertices.shape)


def _arc(cx, cy, rx, ry, start, stop, k: int) -> np.ndarray:
    """Arcs of ellipses, one per sample: every argument is an [n] array (or scalar); -> [n, k, 2]."""
    t = np.linspace(0.0, 1.0, k)[None, :]
    theta = np.asarray(start)[..., None] + (np.asarray(stop) - np.asarray(start))[..., None] * t
    x = np.asarray(cx)[..., None] + np.asarray(rx)[..., None] * np.cos(theta)
    y = np.asarray(cy)[..., None] + np.asarray(ry)[..., None] * np.sin(theta)
    return np.stack(np.broadcast_arrays(x, y), axis=-1)


def _circle(rng, n) -> Strokes:
    start = rng.uniform(0, 2 * np.pi, n)
    sweep = 2 * np.pi * rng.uniform(0.93, 1.12, n)       # hand-drawn circles rarely close exactly
    r = rng.uniform(0.7, 0.85, n)
    return [_arc(0.0, 0.0, r * rng.uniform(0.9, 1.1, n), r, start, start + sweep, 96)]


def _square(rng, n) -> Strokes:
    v = np.array([[-0.72, -0.72], [0.72, -0.72], [0.72, 0.72], [-0.72, 0.72]])
    return [_closed(_jitter(rng, np.broadcast_to(v, (n, 4, 2)), 0.06), 24)]


def _triangle(rng, n) -> Strokes:
    v = np.array([[0.0, -0.8], [0.8, 0.62], [-0.8, 0.62]])
    return [_closed(_jitter(rng, np.broadcast_to(v, (n, 3, 2)), 0.07), 32)]


def _star(rng, n) -> Strokes:
    # Half the stars are drawn as an outline of 10 vertices, half as a pentagram in one stroke.
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    inner = rng.uniform(0.32, 0.45, (n, 1))
    radius = np.where(np.arange(10)[None, :] % 2 == 0, 0.85, inner)
    outline = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=-1)
    tips = -np.pi / 2 + np.array([0, 2, 4, 1, 3]) * 2 * np.pi / 5
    pentagram = np.broadcast_to(0.85 * np.stack([np.cos(tips), np.sin(tips)], axis=-1), (n, 5, 2))
    a = _closed(_jitter(rng, outline, 0.04), 12)
    b = _closed(_jitter(rng, pentagram, 0.05), 24)
    pick = rng.random(n) < 0.5
    return [np.where(pick[:, None, None], a, b)]


def _moon(rng, n) -> Strokes:
    # A crescent opening to the right: the outer arc through the left, back along a shallower inner curve.
    r = rng.uniform(0.72, 0.85, n)
    phi = rng.uniform(0.55, 0.95, n)
    outer = _arc(0.0, 0.0, r, r, phi, 2 * np.pi - phi, 72)
    p0 = outer[:, -1]                                      # the upper tip
    p2 = outer[:, 0]                                       # the lower tip
    mid = np.stack([rng.uniform(-0.35, 0.05, n) * r, np.zeros(n)], axis=-1)
    ctrl = (4 * mid - p0 - p2) / 2
    t = np.linspace(0.0, 1.0, 40)[None, :, None]
    inner = (1 - t) ** 2 * p0[:, None] + 2 * (1 - t) * t * ctrl[:, None] + t**2 * p2[:, None]
    return [np.concatenate([outer, inner[:, 1:]], axis=1)]


def _cross(rng, n) -> Strokes:
    h = np.broadcast_to(np.array([[-0.8, 0.0], [0.8, 0.0]]), (n, 2, 2))
    v = np.broadcast_to(np.array([[0.0, -0.8], [0.0, 0.8]]), (n, 2, 2))
    return [_polyline(_jitter(rng, h, 0.07), 40), _polyline(_jitter(rng, v, 0.07), 40)]


def _heart(rng, n) -> Strokes:
    t = np.linspace(0, 2 * np.pi, 96)[None, :] + rng.uniform(-0.2, 0.2, (n, 1))
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    lobes = rng.uniform(0.9, 1.15, (n, 1))                 # wider or narrower lobes
    return [np.stack([x * lobes, y + 2.5], axis=-1) / 18.0]


def _spiral(rng, n) -> Strokes:
    turns = rng.uniform(1.4, 2.2, n)
    t = np.linspace(0.0, 1.0, 128)[None, :]
    theta = rng.uniform(0, 2 * np.pi, (n, 1)) + 2 * np.pi * turns[:, None] * t
    r = rng.uniform(0.0, 0.08, (n, 1)) + rng.uniform(0.75, 0.88, (n, 1)) * t
    return [np.stack([r * np.cos(theta), r * np.sin(theta)], axis=-1)]


def _zigzag(rng, n) -> Strokes:
    x = np.linspace(-0.9, 0.9, 5)
    y = 0.42 * np.where(np.arange(5) % 2 == 0, -1.0, 1.0)
    v = np.broadcast_to(np.stack([x, y], axis=-1), (n, 5, 2)) * np.stack(
        [np.ones(n), rng.uniform(0.7, 1.3, n)], axis=-1)[:, None, :]
    return [_polyline(_jitter(rng, v, 0.04), 24)]


def _arrow(rng, n) -> Strokes:
    shaft = np.broadcast_to(np.array([[-0.85, 0.0], [0.8, 0.0]]), (n, 2, 2))
    head_len = rng.uniform(0.4, 0.55, (n, 1))
    head = np.stack([
        np.concatenate([0.8 - head_len, -head_len * 0.9], axis=-1),
        np.broadcast_to(np.array([0.8, 0.0]), (n, 2)),
        np.concatenate([0.8 - head_len, head_len * 0.9], axis=-1),
    ], axis=1)
    return [_polyline(_jitter(rng, shaft, 0.05), 56), _polyline(_jitter(rng, head, 0.04), 20)]


SHAPES: dict[str, Callable[[np.random.Generator, int], Strokes]] = {
    "circle": _circle, "square": _square, "triangle": _triangle, "star": _star, "moon": _moon,
    "cross": _cross, "heart": _heart, "spiral": _spiral, "zigzag": _zigzag, "arrow": _arrow,
}
SHAPE_NAMES: tuple[str, ...] = tuple(SHAPES)


def _wobble(rng: np.random.Generator, stroke: np.ndarray) -> np.ndarray:
    """A smooth, low-frequency displacement along the stroke: the unsteady hand."""
    n, k, _ = stroke.shape
    t = np.linspace(0.0, 1.0, k)[None, :, None, None]
    freq = np.arange(1, 4)[None, None, :, None]
    amp = rng.normal(0.0, 0.03, (n, 1, 3, 2)) / freq
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 3, 2))
    return stroke + (amp * np.sin(2 * np.pi * freq * t + phase)).sum(axis=2)


def _pose(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-sample 2x2 matrices: rotation x shear x (stretch, flip) x scale, in pixels per template unit."""
    theta = rng.uniform(-0.35, 0.35, n)
    scale = rng.uniform(9.5, 12.5, n)
    sx = scale * rng.uniform(0.85, 1.15, n) * np.where(rng.random(n) < 0.5, -1.0, 1.0)
    sy = scale * rng.uniform(0.85, 1.15, n)
    shear = rng.uniform(-0.15, 0.15, n)
    c, s = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    shr = np.stack([np.stack([np.ones(n), shear], -1), np.stack([np.zeros(n), np.ones(n)], -1)], -2)
    stretch = np.zeros((n, 2, 2))
    stretch[:, 0, 0], stretch[:, 1, 1] = sx, sy
    return rot @ shr @ stretch


def _arc_weights(stroke: np.ndarray) -> np.ndarray:
    """The arc length each point stands for (half of each neighbouring segment)."""
    seg = np.linalg.norm(np.diff(stroke, axis=1), axis=-1)
    w = np.zeros(stroke.shape[:2])
    w[:, 1:] += seg / 2
    w[:, :-1] += seg / 2
    return w


def _render(points: np.ndarray, weights: np.ndarray, sigma: np.ndarray, gain: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """Points [n, p, 2] in pixel coordinates -> uint8 images [n, 28, 28]."""
    import torch

    centres = torch.arange(SIZE, dtype=torch.float64) + 0.5
    pts = torch.from_numpy(points)
    sig = torch.from_numpy(sigma)[:, None, None]
    gx = torch.exp(-((pts[..., 0:1] - centres) ** 2) / (2 * sig**2))          # [n, p, 28]
    gy = torch.exp(-((pts[..., 1:2] - centres) ** 2) / (2 * sig**2))
    gy = gy * torch.from_numpy(weights)[..., None]
    density = torch.bmm(gy.transpose(1, 2).float(), gx.float()).double()     # [n, 28 rows, 28 cols]
    # A straight stroke's density at distance d is sqrt(2 pi) sigma exp(-d^2 / 2 sigma^2): normalise to 1 at the core.
    density = density / (math.sqrt(2 * math.pi) * sig)
    ink = (density * torch.from_numpy(gain)[:, None, None]).clamp_(0.0, 1.0)
    img = ink * torch.from_numpy(peak)[:, None, None] * 255.0
    return img.round_().clamp_(0, 255).to(torch.uint8).numpy()


def render_shape(shape: str, n: int, seed: int = 0) -> np.ndarray:
    """`n` sketches of one shape as uint8 [n, 28, 28]; the same (shape, n, seed) always gives the same images."""
    if shape not in SHAPES:
        raise KeyError(f"unknown sketch shape {shape!r} (known: {', '.join(SHAPE_NAMES)})")
    if n <= 0:
        return np.zeros((0, SIZE, SIZE), dtype=np.uint8)
    rng = np.random.default_rng([seed, SHAPE_NAMES.index(shape)])
    strokes = [_wobble(rng, s) for s in SHAPES[shape](rng, n)]
    pose = _pose(rng, n)
    strokes = [s @ pose.transpose(0, 2, 1) for s in strokes]
    points = np.concatenate(strokes, axis=1)
    # Shrink drawings that would not fit (a wide heart, stretched), place each at a random spot, then push it back
    # inside the frame where it sticks out.
    lo, hi = points.min(axis=1), points.max(axis=1)
    fit = np.minimum(1.0, (SIZE - 7.0) / (hi - lo).max(axis=1))[:, None, None]
    mid = ((lo + hi) / 2)[:, None, :]
    strokes = [(s - mid) * fit + mid for s in strokes]
    points = np.concatenate(strokes, axis=1)
    lo, hi = points.min(axis=1), points.max(axis=1)
    centre = SIZE / 2 + rng.uniform(-2.0, 2.0, (n, 2)) - (lo + hi) / 2
    shift = centre + np.clip(3.0 - (lo + centre), 0, None) - np.clip(hi + centre - (SIZE - 3.0), 0, None)
    points = points + shift[:, None, :]
    weights = np.concatenate([_arc_weights(s) for s in strokes], axis=1)
    sigma = rng.uniform(0.55, 1.0, n)
    gain = rng.uniform(1.3, 2.2, n)
    peak = rng.uniform(0.8, 1.0, n)
    return _render(points, weights, sigma, gain, peak)


def generate(classes: tuple[str, ...] | list[str] | None = None, per_class: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images uint8 [N, 28, 28], labels int64 [N] (index into the returned class names), class names.

    Each shape's samples depend only on (shape, per_class, seed), not on which other shapes are asked for.
    """
    names = tuple(classes) if classes else SHAPE_NAMES
    unknown = [c for c in names if c not in SHAPES]
    if unknown:
        raise KeyError(f"unknown sketch shape {unknown[0]!r} (known: {', '.join(SHAPE_NAMES)})")
    images = np.concatenate([render_shape(name, per_class, seed) for name in names]) if names else np.zeros((0, SIZE, SIZE), np.uint8)
    labels = np.repeat(np.arange(len(names), dtype=np.int64), per_class)
    return images, labels, names
