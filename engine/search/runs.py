"""One stored run of a search method, start to finish: the trainer every method goes through.

`execute(method, store, run_id)`:
- a run id the store does not hold: creates its record (`method.record`) and its α-trajectory arrays;
- a stored run: refuses it when it is another run (`method.mismatch`: config keys, target, seed, space, arm), returns
  its result when it is done, finishes it from its final weights when it was killed just before `done`, and otherwise
  continues it (a resumable method, from its checkpoint) or starts it again (the others: they keep no checkpoint);
- then `method.search(run)`, the final retraining of the selection from scratch on train + val (when the method
  retrains), the single read of the test split, and the record of the result: the per-sample test outcome first, then
  the final weights (with the result, so a crash after them is finished on resume), then `status = done`.
A stop or failure on the way is recorded in the run's status and re-raised.
"""
from __future__ import annotations

import time
from typing import Any

from engine.runtime.device import device_label
from engine.runtime.finite import Diverged
from engine.runtime.reporting import SILENT, JobStopped, Reporter
from engine.search.checkpoint import final_result, save_final_weights
from engine.search.method import ResumeMismatch, SearchMethod, SearchResult, Selection, now
from engine.search.training import test_outcome, train_network, train_split
from engine.space.network import count_params
from store.faults import fault_point

__all__ = ["Run", "execute", "stored_run"]


class Run:
    """What a method's search is given: where it writes (the store, the run's trajectory writer), whom it tells (the
    reporter), whether it continues a stored run, and the run's clock (device seconds over every session)."""

    def __init__(self, store, run_id: str, writer, reporter: Reporter, resumed: bool):
        self.store, self.run_id, self.writer, self.reporter, self.resumed = store, run_id, writer, reporter, resumed
        self.base_seconds = 0.0      # a resumed method sets the seconds its earlier sessions took
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        return self.base_seconds + (time.perf_counter() - self._started)


def stored_run(store, run_id: str) -> dict[str, Any] | None:
    """The stored run's attrs, or None."""
    for attrs in store.list_searches():
        if attrs["id"] == run_id:
            return attrs
    return None


def execute(method: SearchMethod, store, run_id: str, *, reporter: Reporter = SILENT,
            attrs: dict[str, Any] | None = None) -> SearchResult:
    """Runs `method` as the stored run `run_id` (new, resumed, finished, or returned as stored); see the module doc.
    `attrs` are the caller's fields of the record (arm, purpose, space kind), also checked against a stored run."""
    attrs = dict(attrs or {})
    stored = stored_run(store, run_id)
    if stored is not None:
        problems = method.mismatch(stored, attrs)
        if problems:
            if attrs.get("purpose") == "base-genotype":   # its id follows from the task: no option renames it
                way = "or restore the settings it was made with"
            else:
                way = ("or start a new run beside it with another search seed or run id: `tanas-tui run --seed N` "
                       "or `--run-id ID`, `tanas-tui search TARGET --seed N` or `--run-id ID`")
            raise ResumeMismatch(
                f"search {run_id!r} is stored with another configuration: " + "; ".join(problems)
                + f" (remove it with `tanas-tui searches remove {run_id}`, {way})",
                key=", ".join(p.split(" (")[0] for p in problems))
        if stored.get("status") == "done" and stored.get("result"):
            return SearchResult.from_dict(stored["result"])
        finished = final_result(store, run_id)
        if finished is not None:  # killed after its final weights were saved, before `done` was recorded
            store.update_search(run_id, status="done", finished=now(), result=finished)
            reporter.emit("search_done", run_id=run_id, result=finished)
            return SearchResult.from_dict(finished)
        writer = store.open_search_writer(run_id)
        if not method.resumable:
            writer.truncate(0)
        store.update_search(run_id, status="running", resumed=now())
    else:
        writer = store.create_search(run_id, method.record(attrs), method.width())
    run = Run(store, run_id, writer, reporter, resumed=stored is not None)
    try:
        selection = method.search(run)
        writer.flush()
        return _finish(method, run, selection)
    except (JobStopped, KeyboardInterrupt):
        _after_error(run, status="stopped", stopped=now())
        raise
    except Diverged as exc:
        # the diverged phase's buffered steps are dropped, not flushed: a resume restarts from the last checkpoint
        _after_error(run, flush=False, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    except BaseException as exc:
        _after_error(run, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise


def _finish(method: SearchMethod, run: Run, selection: Selection) -> SearchResult:
    task, cfg, device = method.task, method.section, method.device
    acc = correct = None
    final_epochs = 0
    if method.retrain:
        model, data_seed = method.final_model(selection)
        verb = "retraining" if selection.genotype is not None else "training"
        run.reporter.emit("log", level="info", message=f"search {run.run_id}: {verb} {selection.name} from scratch "
                                                       f"on train+val for {cfg.final_epochs} epochs")
        x, y = train_split(task, "train+val")
        stage = f"{verb} {selection.name}"     # its own counter, under the run's id (as random search's candidates)

        def epoch_done(epoch: int, _loss: float) -> None:
            run.reporter.emit("job_progress", job=run.run_id, stage=stage, done=epoch, total=cfg.final_epochs)

        epoch_done(0, 0.0)
        train_network(model, x, y, cfg.final_epochs, device=device, seed=data_seed, batch_size=cfg.batch_size,
                      lr=cfg.w_lr, reporter=run.reporter, stage="final retraining", where=f"run {run.run_id}",
                      on_epoch=epoch_done)
        test_x, test_y = task.test_split()
        acc, correct = test_outcome(model, test_x, test_y, device)
        final_epochs = cfg.final_epochs
    else:
        model = selection.model
    seconds = run.elapsed()
    params = count_params(model)
    genotype = selection.genotype
    result = SearchResult(
        run_id=run.run_id, genotype=genotype.to_dict() if genotype else {}, hash=selection.name,
        test_error=None if acc is None else 100.0 * (1.0 - acc), test_acc=acc, params=params, params_m=params / 1e6,
        cost_device_hours=seconds / 3600.0, seconds=seconds, device=device_label(device), kind=method.kind,
        final_epochs=final_epochs, parameter_free_share=genotype.parameter_free_share() if genotype else 0.0,
        warnings=list(selection.warnings), test_correct=correct)
    # the test outcome before the final blob: a run whose final blob exists (and may be finished from it after a
    # crash) has its per-sample outcome too
    if correct is not None:
        run.store.save_test_outcome(run.run_id, correct, task.id)
    if genotype is not None:   # a fixed network's weights are not kept (export takes searched runs)
        save_final_weights(run.store, run.run_id, genotype, model, task.num_classes, method.in_channels,
                           result=result.to_dict())
    fault_point("final-saved")
    run.store.update_search(run.run_id, status="done", finished=now(), result=result.to_dict(), **selection.attrs)
    run.reporter.emit("search_done", run_id=run.run_id, result=result.to_dict())
    return result


def _after_error(run: Run, flush: bool = True, **attrs: Any) -> None:
    """Commit what was computed (unless `flush` is off) and record why the run ended; never masks the original
    error."""
    try:
        if flush:
            run.writer.flush()
        run.store.update_search(run.run_id, **attrs)
    except Exception:  # noqa: BLE001 - the original error matters more; resume truncates anyway
        pass
