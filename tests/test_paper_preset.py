"""presets/paper.toml: the paper's budgets and unbalanced target, and its whole pipeline end to end on tiny stand-in
files of the real formats (IDX for MNIST / Fashion-MNIST, numpy_bitmap .npy for Quick, Draw!) with tiny budgets."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.search.baselines import FIXED_NETWORKS
from engine.config import load_config
from engine.data.paper_files import PAPER_FILES, QUICKDRAW_CATEGORIES
from tanas_tui.cli import app
from tanas_tui.client import engine_running, stop_engine

PRESET = Path(__file__).resolve().parents[1] / "presets" / "paper.toml"
PER_CLASS = 6          # images per class in every stand-in file
TINY_BUDGETS = {       # TANAS_* environment overrides: the preset's structure, minutes → seconds
    "TANAS_PROJECT_DEVICE": "cpu", "TANAS_PROJECT_THREADS": "1",
    "TANAS_DICTIONARY_PROBE": "cnn", "TANAS_DICTIONARY_MAX_EPOCHS": "1", "TANAS_DICTIONARY_FISHER_SAMPLES": "4", "TANAS_DICTIONARY_SEEDS": "1",
    "TANAS_DICTIONARY_GENOTYPE_ROUNDS": "1", "TANAS_DICTIONARY_BATCH_SIZE": "32",
    "TANAS_SPACE_CHANNELS": "[4]", "TANAS_SPACE_LAYERS": "[3]",
    "TANAS_SEARCH_ROUNDS": "1", "TANAS_SEARCH_CANDIDATES": "2", "TANAS_SEARCH_ALTERNATIONS": "1",
    "TANAS_SEARCH_W_EPOCHS": "1", "TANAS_SEARCH_FINAL_EPOCHS": "1", "TANAS_SEARCH_REPEATS": "1",
    "TANAS_SEARCH_BATCH_SIZE": "32",
    # no fixed-network arm: ResNet/DenseNet cost minutes here; test_baselines trains one
    "TANAS_SEARCH_ARMS": "[\"random\", \"fuse-standard\", \"fuse-task-aware\", \"fuse-farthest\"]",
}


def test_preset_has_the_papers_budgets_and_a_1_to_9_target():
    cfg = load_config(PRESET, env={})
    s, d = cfg.search, cfg.dictionary
    # METHOD 5 defaults: 5 rounds of 4 candidates, 5 alternations, Adam lr 1e-3 (weights) and 3e-3 (α); k = 3
    assert (s.rounds, s.candidates, s.alternations, s.w_lr, s.alpha_lr, d.k) == (5, 4, 5, 1e-3, 3e-3, 3)
    assert s.compare and s.repeats >= 3 and s.alpha_batch_size > 0
    assert set(s.fixed_networks) == {"resnet18", "resnet34", "densenet161"} <= set(FIXED_NETWORKS)
    assert [t.name for t in cfg.tasks] == [f"mnist-{k}" for k in range(5)] + [
        f"fashion-{c}" for c in ("tshirt", "trouser", "pullover", "dress", "coat")]
    assert cfg.target.positive == ("moon",) and cfg.target.balance is False
    assert tuple(cfg.sources["quickdraw"].options["categories"]) == QUICKDRAW_CATEGORIES


def test_densenet161_builds_for_28px_inputs():
    model = FIXED_NETWORKS["densenet161"][1](2, 1).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 2)


def _idx(path: Path, kind: str, labels: np.ndarray, rng) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    if kind == "images":
        # each class a bright block in its own place, plus noise: learnable, like digits
        x = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for i, c in enumerate(labels):
            r, q = divmod(int(c), 4)
            x[i, 2 + 7 * r: 8 + 7 * r, 2 + 6 * q: 8 + 6 * q] = 230
        path.write_bytes(struct.pack(">IIII", 0x0803, n, 28, 28) + x.tobytes())
    else:
        path.write_bytes(struct.pack(">II", 0x0801, n) + labels.astype(np.uint8).tobytes())


def _stand_in_data(data_dir: Path) -> None:
    """Uncompressed IDX files where torchvision keeps its extracted copies (so no download and no MD5 check of the
    stand-ins), and a small numpy_bitmap file per Quick, Draw! category."""
    rng = np.random.default_rng(0)
    for folder in ("MNIST", "FashionMNIST"):
        for prefix, n in (("train", PER_CLASS), ("t10k", 2)):
            labels = np.repeat(np.arange(10), n)
            rng.shuffle(labels)
            _idx(data_dir / folder / "raw" / f"{prefix}-images-idx3-ubyte", "images", labels, rng)
            _idx(data_dir / folder / "raw" / f"{prefix}-labels-idx1-ubyte", "labels", labels, rng)
    for i, spec in enumerate(f for f in PAPER_FILES if f.source == "quickdraw"):
        path = data_dir / spec.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        x = rng.integers(0, 40, (3 * PER_CLASS, 784), dtype=np.uint8)
        x[:, i * 70: i * 70 + 60] = 255
        np.save(path, x)


@pytest.fixture
def tiny_paper(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    _stand_in_data(data_dir)
    store = tmp_path / "paper-store.zarr"
    for key, value in {**TINY_BUDGETS, "TANAS_PROJECT_DATA_DIR": str(data_dir),
                       "TANAS_PROJECT_STORE": str(store)}.items():
        monkeypatch.setenv(key, value)
    yield store
    if engine_running(store) is not None:
        stop_engine(store, timeout=20)


def test_paper_preset_runs_end_to_end_on_stand_in_files(tiny_paper):
    result = CliRunner().invoke(app, ["run", str(PRESET)])
    assert result.exit_code == 0, result.output
    text = result.output
    for name in ("mnist-0", "fashion-coat", "quickdraw-moon"):
        assert f"probe {name}" in text, name
    assert "Nearest tasks of quickdraw-moon" in text and "job run_pipeline ok" in text
    table = text[text.index("Result: quickdraw-moon"):]
    for row in ("Random search", "FUSE, standard", "FUSE, task-aware"):
        assert row in table, row

    from engine.data import get_source
    from engine.data.tasks import build_task

    cfg = load_config(PRESET)          # with the fixture's environment: the stand-in data directory
    target = build_task(cfg.target, get_source("quickdraw", cfg.sources, cfg.data_dir, base_dir=cfg.root))
    labels = torch.cat([target.train_y, target.val_y, target.test_split()[1]])
    assert target.class_names[1] == "moon" and len(labels) == 10 * 3 * PER_CLASS
    assert int(labels.sum()) * 9 == len(labels) - int(labels.sum())       # moons : the rest = 1 : 9, as in the paper
