import importlib.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from engine.search.export import ExportError, export_model
from engine.space.genotype import Cell, Genotype
from engine.space.network import build_network

CELL = Cell(((("sep_conv_3x3", 0), ("skip_connect", 1)),
             (("dil_conv_3x3", 2), ("max_pool_3x3", 0)),
             (("conv_7x1_1x7", 3), ("none", 1))))
G = Genotype(CELL, CELL, channels=8, layers=3)

# Runs in a fresh interpreter (-I: no cwd, no user site, no PYTHON* env) that refuses to import the project, so the
# file must load with plain PyTorch alone.
LOADER = textwrap.dedent("""
    import importlib.abc, importlib.util, json, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"engine", "tanas_tui", "store"}:
                raise ImportError("blocked: " + name)

    sys.meta_path.insert(0, Block())
    try:
        import engine
    except ImportError:
        pass
    else:
        raise SystemExit("engine importable")
    import torch
    model = torch.jit.load(sys.argv[1])
    torch.manual_seed(0)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        out = model(x)
    assert "engine" not in sys.modules and "tanas_tui" not in sys.modules
    print(json.dumps(out.tolist()))
""")


def _trained_state():
    model = build_network(G, num_classes=3, seed=0)
    # make BN statistics non-trivial so a lost buffer would show
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 1, 28, 28))
    return model.eval()


def test_genotype_export_round_trips(tmp_path):
    path = export_model(G, None, 3, "genotype", tmp_path / "g.json")
    doc = json.loads(path.read_text())
    assert doc["hash"] == G.hash
    assert Genotype.from_json(path.read_text()) == G


def test_torchscript_loads_without_tanas(tmp_path):
    model = _trained_state()
    state = {k: v.numpy() for k, v in model.state_dict().items()}  # numpy, as the store returns weights
    assert isinstance(next(iter(state.values())), np.ndarray)
    path = export_model(G, state, 3, "torchscript", tmp_path / "sub" / "model.pt")
    script = tmp_path / "load.py"
    script.write_text(LOADER)
    run = subprocess.run([sys.executable, "-I", str(script), str(path)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    out = torch.tensor(json.loads(run.stdout))
    torch.manual_seed(0)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        expected = model(x)
    assert out.shape == (3, 3)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_model_export_errors(tmp_path):
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export_model(G, {}, 3, "tflite", tmp_path / "x")
    with pytest.raises(ExportError, match="needs the trained weights"):
        export_model(G, None, 3, "torchscript", tmp_path / "x.pt")
    wrong = build_network(G, num_classes=5, seed=0).state_dict()
    with pytest.raises(ExportError, match=f"do not fit genotype {G.hash} with 3 classes"):
        export_model(G, wrong, 3, "torchscript", tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_onnx_without_onnx_says_what_to_install(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real_find_spec(name, *a))
    with pytest.raises(ExportError, match=r"pip install 'tanas-tui\[onnx\]'"):
        export_model(G, build_network(G, 3, seed=0).state_dict(), 3, "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_export_runs_in_onnxruntime(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _trained_state()
    path = export_model(G, model.state_dict(), 3, "onnx", tmp_path / "m.onnx")
    x = torch.rand(2, 1, 28, 28)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-4, atol=1e-5)
