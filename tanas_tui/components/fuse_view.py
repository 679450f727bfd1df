"""What the FUSE tab shows of a run, as text and table rows, from the model alone (no widgets): the header, the
candidates of a round with their α shares, and, for the comparison's other runs, what they are instead (a random
search's candidates, each trained alone; a fixed network)."""
from __future__ import annotations

import math
from typing import Any

from rich.text import Text

from tanas_tui.components.plots import PALETTE, sparkline
from tanas_tui.model import SearchRun, UiModel
from tanas_tui.units import cost, loss, params, pct, share, test_error

FUSE_COLUMNS = ("#", "hash", "params", "softmax(α)", "val acc", "α history")
RANDOM_COLUMNS = ("#", "hash", "params", "val acc", "val loss")
SPARK_WIDTH = 16
STATUS_STYLE = {"running": "green", "done": "cyan", "paused": "yellow", "failed": "red", "stopped": "yellow"}


def method_label(s: SearchRun) -> str:
    """"task-aware space" for FUSE, "random search (standard space)", "fixed network ResNet-18"."""
    kind = (s.space or {}).get("kind") or s.attrs.get("space_kind")
    if s.is_fuse:
        return f"{kind} space" if kind else ""
    if s.method == "random":
        return "random search" + (f" ({kind} space)" if kind else "")
    return "fixed network " + str(s.attrs.get("network") or s.method.partition(":")[2] or s.method)


def header(model: UiModel, s: SearchRun, pinned: bool) -> Text:
    t = Text()
    t.append(s.id, style="bold")
    t.append(f"  target {model.task_name(s.target) if s.target in model.tasks else s.target_name or '?'}")
    label = method_label(s)
    if label:
        t.append(f"  {label}")
    status = model.search_status(s)
    t.append("  ")
    t.append(status, style=f"bold {STATUS_STYLE.get(status, 'magenta blink' if status.endswith('…') else '')}")
    if s.device:
        t.append(f"  on {s.device}", style="dim")
    if s.is_fuse:
        t.append(f"  {s.steps} α steps", style="dim")
        if not s.loaded:
            t.append("  (loading history…)", style="dim")
    elif s.method == "random":
        t.append(f"  {len(s.evaluated)} candidates", style="dim")
    t.append("  pinned (f: follow the running search)" if pinned else "  following the running search", style="dim")
    return t


def fuse_rows(s: SearchRun, rnd: int, counted: dict[str, int | None]) -> dict[str, tuple]:
    """Round `rnd`'s candidates: mark (★ the largest α, ↻ the carried incumbent), hash, params, share, val acc and
    a sparkline of the share, keyed "index:hash"."""
    steps = s.round_steps(rnd)
    hashes = s.hashes(rnd)
    last_alpha = s.probs[steps[-1]] if steps else [1.0 / max(1, len(hashes))] * len(hashes)
    last_acc = s.val_acc[steps[-1]] if steps and steps[-1] < len(s.val_acc) else []
    history = s.probs[max(steps.start, steps.stop - SPARK_WIDTH):steps.stop] if steps else []
    # one scale for the round's sparklines, fitted to what they show: shares move by hundredths, not 0..1
    shown = [v for row in history for v in row if not math.isnan(v)]
    lo, hi = (min(shown), max(shown)) if shown else (0.0, 1.0)
    best = max(range(len(last_alpha)), key=lambda i: last_alpha[i]) if last_alpha else -1
    carried = s.carried(rnd)
    rows = {}
    for i, h in enumerate(hashes):
        alpha = last_alpha[i] if i < len(last_alpha) else None
        mark = Text("★", style="bold yellow") if i == best and steps else Text(str(i))
        if carried and h == carried:
            mark.append(" ↻", style="cyan")   # the incumbent carried over from the round before
        spark = sparkline([row[i] for row in history if i < len(row)], width=SPARK_WIDTH, lo=lo, hi=hi)
        rows[f"{i}:{h}"] = (mark, h, params(counted.get(h)), Text(share(alpha), style="bold" if i == best else ""),
                            pct(last_acc[i] if i < len(last_acc) else None), Text(spark, style=PALETTE[i % len(PALETTE)]))
    return rows


def random_rows(s: SearchRun, counted: dict[str, int | None]) -> dict[str, tuple]:
    """Random search's candidates in the order trained; ★ the one that won (the best val accuracy)."""
    winner = (s.result or {}).get("hash")
    rows = {}
    for i, c in enumerate(s.evaluated):
        h = str(c.get("hash") or "?")
        mark = Text("★", style="bold yellow") if h == winner else Text(str(i))
        rows[f"{i}:{h}"] = (mark, h, params(counted.get(h)), pct(c.get("val_acc")), loss(c.get("val_loss")))
    return rows


def candidate_genotypes(s: SearchRun, rnd: int) -> list[Any]:
    """The genotypes behind the rows, in row order."""
    if s.is_fuse:
        return s.genotypes(rnd)
    return [c.get("genotype") for c in s.evaluated]


def note(s: SearchRun) -> Text:
    """For a run without α: what it did instead of FUSE's alternations."""
    cfg = s.config
    if s.method == "random":
        epochs = int(cfg.get("alternations") or 1) * int(cfg.get("w_epochs") or 1)
        return Text(f"random search: each of the {len(s.evaluated)} candidates was trained alone for {epochs} "
                    f"epochs (one FUSE round's weight epochs) and judged by its validation accuracy; the best one "
                    f"(★) was retrained for {cfg.get('final_epochs', '?')} epochs on train + val. No α, no plots.",
                    style="dim")
    return Text(f"{method_label(s)}: trained for {cfg.get('final_epochs', '?')} epochs on train + val; nothing was "
                f"searched, so there are no candidates and no α.", style="dim")


def result(s: SearchRun) -> Text | None:
    r = s.result
    if not r:
        return None
    t = Text()
    t.append("result ", style="bold green")
    t.append(f"{r.get('hash', '?')}")
    if isinstance(r.get("test_error"), (int, float)):
        t.append(f"  test error {test_error(r['test_error'])}")
    t.append(f"  {params(r.get('params'))} params")
    t.append(f"  cost {cost(r)}")
    t.append("  g: picture  e: export" if isinstance(r.get("genotype"), dict) and r["genotype"] else "", style="dim")
    return t
