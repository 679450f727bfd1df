"""28x28 grey images in the terminal with half-block characters: each text cell shows two pixels, one above the
other (the upper as the foreground colour of "▀", the lower as the background colour)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from rich.color import Color
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.style import Style
from rich.text import Text

UPPER_HALF = "▀"
_STYLES: dict[tuple[int, int], Style] = {}


def _style(top: int, bottom: int) -> Style:
    key = (top, bottom)
    style = _STYLES.get(key)
    if style is None:
        style = _STYLES[key] = Style(color=Color.from_rgb(top, top, top), bgcolor=Color.from_rgb(bottom, bottom, bottom))
    return style


def _as_array(images: Any) -> np.ndarray:
    if hasattr(images, "detach"):   # a torch tensor (torch is not imported here: the UI starts without it)
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 4:
        if arr.shape[1] != 1:
            raise ValueError(f"images must have one channel, got shape {arr.shape}")
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"images must be [n, 1, h, w], [n, h, w] or [h, w], got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float64) * (255.0 if arr.max(initial=0) <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
    return arr


def _resample(arr: np.ndarray, width: int) -> np.ndarray:
    """[n, h, w] uint8 -> [n, rows, width] with rows even and the picture's aspect kept (a cell is about 1:2)."""
    n, h, w = arr.shape
    rows = max(2, int(round(width * h / w / 2)) * 2)
    if (rows, width) == (h, w):
        return arr
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(arr.astype(np.float32))[:, None]
    mode = "area" if width <= w and rows <= h else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    x = F.interpolate(x, size=(rows, width), mode=mode, **kwargs)
    return x[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()


RAMP = " .:-=+*#%@"


class _Picture:
    """Half blocks in colour; on a console without colour (a pipe, a log file) an ASCII density ramp instead."""

    def __init__(self, image: np.ndarray):
        self.image = image

    def __rich_console__(self, console, options):
        if console.color_system is None:
            yield ramp_text(self.image)
        else:
            yield image_text(self.image)

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement

        return Measurement(self.image.shape[1], self.image.shape[1])


def ramp_text(image: np.ndarray) -> Text:
    pairs = (image[0::2].astype(np.uint16) + image[1::2]) // 2
    idx = (pairs * (len(RAMP) - 1) + 127) // 255
    return Text("\n".join("".join(RAMP[i] for i in row) for row in idx.tolist()), no_wrap=True, overflow="crop")


def image_text(image: np.ndarray) -> Text:
    """One [rows, width] uint8 image (rows even) as a Text of rows/2 lines."""
    text = Text(no_wrap=True, overflow="crop")
    for r in range(0, image.shape[0], 2):
        top, bottom = image[r], image[r + 1]
        for t, b in zip(top.tolist(), bottom.tolist()):
            text.append(UPPER_HALF, _style(t, b))
        if r + 2 < image.shape[0]:
            text.append("\n")
    return text


def render_images(images: Any, captions: Sequence[str] | None = None, width_cells: int = 14) -> RenderableType:
    """Images (uint8 [n, 1, 28, 28] tensor or array) side by side, each `width_cells` wide, captions underneath."""
    if width_cells < 2:
        raise ValueError(f"width_cells must be at least 2, got {width_cells}")
    arr = _resample(_as_array(images), width_cells)
    if captions is not None and len(captions) != len(arr):
        raise ValueError(f"{len(arr)} images but {len(captions)} captions")
    tiles = []
    for i, img in enumerate(arr):
        parts: list[RenderableType] = [_Picture(img)]
        if captions is not None:
            parts.append(Text(str(captions[i]), no_wrap=True, overflow="ellipsis", justify="center", end=""))
        tiles.append(Group(*parts))
    return Columns(tiles, padding=(0, 1), width=width_cells)


def task_preview(attrs: dict[str, Any], config: Any = None) -> Any:
    """Runs in a thread: a few positive and negative samples of a task, as block-character pictures."""
    from engine.data import get_source

    from tanas_tui.model.tasks import task_definition

    d = task_definition(attrs)
    name = d.get("source")
    if not name:
        return Text("no source recorded for this task", style="dim")
    source = get_source(name, config) if config is not None else get_source(name)
    if not source.available():
        return Text(f"source {name!r} is not available on this machine (files missing); no preview",
                    style="yellow")
    ds = source.load()
    wanted = list(d.get("positive") or d.get("classes") or [])
    picks: list[int] = []
    captions: list[str] = []
    labels = ds.labels.tolist()
    for cls in wanted[:4]:
        if cls in ds.classes:
            ci = ds.classes.index(cls)
            found = [i for i, y in enumerate(labels) if y == ci][:max(1, 4 // max(1, len(wanted[:4])))]
            picks += found
            captions += [cls] * len(found)
    rest = [i for i, y in enumerate(labels) if ds.classes[y] not in wanted][:2]
    picks += rest
    captions += [f"rest:{ds.classes[labels[i]]}" for i in rest]
    if not picks:
        return Text("no samples found for this task's classes", style="yellow")
    return render_images(ds.images[picks], captions, width_cells=8)
