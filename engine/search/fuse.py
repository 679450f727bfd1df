"""FUSE (Fusion Search) with checkpoint / resume: the search method of `engine.search.method` the comparison is about.

The candidates are whole networks; the relaxed output is the softmax(α)-weighted sum of their logits. A round runs
`alternations` times: `w_epochs` epochs on the TRAIN split with α frozen (candidates in train mode, one Adam over all
candidates' weights), then `alpha_epochs` α steps on the VAL split with the weights frozen (candidates in eval mode).
The argmax-α candidate becomes the incumbent; the next round is the incumbent (keeping its weights) plus
`candidates - 1` fresh samples, with α reset to zeros and a fresh weight optimiser. After the last round the incumbent
is retrained from scratch on train + val and the TEST split is read once, for the report.

α-step granularity: one α step is one Adam step on a val minibatch of `alpha_batch_size` (engine/alpha_opt.py), so an
α epoch is ceil(n_val / alpha_batch_size) steps; alpha_batch_size 0 is one full-val-split step per α epoch. Because
the weights are frozen and the networks are in eval mode during the α phase, each candidate's val logits are constant
within an alternation: they are computed once per α phase and every α step, loss and accuracy comes from that cache.
Each α step is one row of the stored trajectory: α after the step, round, step_kind (= the alternation index within
the round), loss_train (the mean of the last weight epoch), loss_val (the mixture's full val loss at the new α) and
each candidate's val accuracy.

Checkpoints (at every round end and every `checkpoint_minutes` at an alternation boundary) hold all candidates'
weights, α, both optimiser states, torch / python RNG states, the data-order generator state, the position and the
committed step count. Randomness that shapes the search (candidate samples, initial weights, the final retraining)
comes from seeds derived from (seed, round, index), so a resumed run repeats an uninterrupted one exactly on the CPU.
How a checkpoint and the final network are written to the store is `engine.search.checkpoint`'s; the final
retraining, the test read and the result record are `engine.search.runs.execute`'s, as for every method.
"""
from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from engine.search.alpha_opt import alpha_steps
from engine.runtime.finite import Watch, check, check_module
from engine.config import ConfigError, SearchSection
from engine.runtime.device import prepare_model
from engine.space.genotype import Genotype
from engine.space.network import build_network
from engine.runtime.reporting import SILENT, Reporter
from engine.runtime.batchnorm import recalibrate_batchnorm
from engine.search.checkpoint import cpu_state, load_search_checkpoint, py_state, py_unstate, save_search_checkpoint
from engine.search.method import SearchMethod, SearchResult, Selection, derive_seed, now
from engine.search.runs import execute
from store.records import BudgetRecord
from engine.search.training import data_generator, predict_logits, train_epoch

__all__ = ["Fuse", "Mixture", "fuse_budget"]

COLLAPSE_SHARE = 1.0
WEIGHT_PROGRESS_S = 0.5    # at most two weight_progress events a second


def fuse_budget(cfg: SearchSection, retrain: bool = True) -> dict[str, Any]:
    """FUSE's training budget (BudgetRecord attrs): every round trains `candidates` networks for alternations ×
    w_epochs epochs each (the incumbent included), then the winner is retrained for final_epochs."""
    return BudgetRecord(epochs=cfg.rounds * cfg.candidates * cfg.alternations * cfg.w_epochs, unit="candidate-epochs",
                        final_epochs=cfg.final_epochs if retrain else 0, candidates=cfg.rounds * cfg.candidates
                        ).to_attrs()


class Mixture(nn.Module):
    """logits = Σ_c softmax(α)_c · candidate_c(x)."""

    def __init__(self, candidates: list[nn.Module], alpha: nn.Parameter):
        super().__init__()
        self.candidates = nn.ModuleList(candidates)
        self.alpha = alpha

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.alpha, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weights()
        out = None
        for i, candidate in enumerate(self.candidates):
            term = w[i] * candidate(x)
            out = term if out is None else out + term
        return out


def alpha_entropy(alpha: torch.Tensor) -> float:
    p = torch.softmax(alpha.detach().float(), 0)
    return float(-(p * torch.log(p.clamp_min(1e-12))).sum())


@dataclass
class _State:
    round: int = 0
    alternation: int = 0
    genotypes: list[Genotype] = field(default_factory=list)
    models: list[nn.Module] = field(default_factory=list)
    alpha: nn.Parameter | None = None
    w_opt: torch.optim.Optimizer | None = None
    a_opt: torch.optim.Optimizer | None = None
    seconds: float = 0.0
    loss_train: float = float("nan")
    incumbents: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rounds: list[dict] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)   # softmax(α) entropy after each α step


class Fuse(SearchMethod):
    """FUSE as a search method (`engine.search.method`): rounds of weight and α phases over a candidate set, the
    argmax-α incumbent carried into the next round, checkpoints for resume. `engine.search.runs.execute` runs it as a
    stored run; `Fuse(..., store=, run_id=).run()` and `Fuse.resume` are that call for one run."""

    kind = "fuse"
    resumable = True

    def __init__(self, task, space, cfg: SearchSection, *, store=None, run_id: str | None = None,
                 device: torch.device | str = "cpu", seed: int = 0, reporter: Reporter = SILENT,
                 attrs: dict[str, Any] | None = None, retrain: bool = True):
        """`retrain=False` ends the search at the selected genotype (its in-search weights are kept), without the
        final retraining and test evaluation: how a base task gets its best genotype cheaply."""
        super().__init__(task, cfg, seed=seed, device=device, space=space, retrain=retrain)
        self.cfg = cfg
        self.store, self.run_id, self.reporter = store, run_id, reporter
        self.extra_attrs = dict(attrs or {})
        self._gen = data_generator(derive_seed(self.seed, "data"))
        self.train_x, self.train_y = task.train_x.to(self.device), task.train_y.to(self.device)
        self.val_x, self.val_y = task.val_x.to(self.device), task.val_y.to(self.device)
        if self.val_x.shape[0] == 0:
            raise ValueError(f"task {task.definition.name!r}: the val split is empty; FUSE trains alpha on val")

    # -- one stored run ----------------------------------------------------------------------------------------------
    def run(self) -> SearchResult:
        """This search as the stored run `run_id` (continued or returned when the store holds it)."""
        return execute(self, self.store, self.run_id, reporter=self.reporter, attrs=self.extra_attrs)

    @classmethod
    def resume(cls, store, run_id: str, task, space, cfg: SearchSection, device: torch.device | str = "cpu",
               reporter: Reporter = SILENT) -> SearchResult:
        """Continue a stored run from its last checkpoint (or return its result when it is done), with its seed."""
        attrs = store.search(run_id)
        return cls(task, space, cfg, store=store, run_id=run_id, device=device, seed=int(attrs.get("seed", 0)),
                   reporter=reporter, retrain=bool(attrs.get("retrain", True))).run()

    # -- the method ------------------------------------------------------------------------------------------------
    def width(self) -> int:
        return self.cfg.candidates

    def budget(self) -> dict[str, Any]:
        return fuse_budget(self.cfg, self.retrain)

    def record_extra(self) -> dict[str, Any]:
        return {"retrain": self.retrain,
                "alpha_step": "one Adam step per val minibatch of alpha_batch_size (0: per alpha epoch, full val split)",
                "step_kind": "alternation index within the round"}

    def search(self, run) -> Selection:
        self._run, self.writer, self.store, self.run_id, self.reporter = (run, run.writer, run.store, run.run_id,
                                                                           run.reporter)
        state = self._restore() if run.resumed else _State()
        run.base_seconds = state.seconds
        self._search(state)
        return Selection(name=state.genotypes[0].hash, genotype=state.genotypes[0], model=state.models[0],
                         warnings=list(state.warnings))

    # -- the search ------------------------------------------------------------------------------------------------
    def _search(self, st: _State) -> None:
        cfg = self.cfg
        last_ckpt = time.perf_counter()
        while st.round < cfg.rounds:
            if not st.models or st.alpha is None:
                self._begin_round(st)
            while st.alternation < cfg.alternations:
                st.loss_train = self._weight_phase(st)
                self._alpha_phase(st)
                st.alternation += 1
                due = time.perf_counter() - last_ckpt >= cfg.checkpoint_minutes * 60
                if due and st.alternation < cfg.alternations:
                    self._checkpoint(st)
                    last_ckpt = time.perf_counter()
            self._end_round(st)
            self._checkpoint(st)
            last_ckpt = time.perf_counter()

    def _begin_round(self, st: _State) -> None:
        cfg, r = self.cfg, st.round
        incumbent = st.genotypes[:1]
        # a cell-level space's first round starts from the neighbours' own genotypes; at least one draw beside them
        given = self.space.first_candidates()[:cfg.candidates - 1] if r == 0 and not incumbent else []
        fresh = given + self.space.sample_many(cfg.candidates - len(incumbent) - len(given),
                                               derive_seed(self.seed, "sample", r),
                                               exclude=[g.hash for g in incumbent + given])
        models = st.models[:1] if incumbent else []
        for i, g in enumerate(fresh):
            model = build_network(g, self.task.num_classes, self.in_channels,
                                  seed=derive_seed(self.seed, "init", r, i))
            models.append(prepare_model(model, self.device))
        st.genotypes = incumbent + fresh
        st.models = models
        self._make_optimizers(st)
        self.writer.set_candidates(r, [g.to_dict() for g in st.genotypes], [g.hash for g in st.genotypes])
        self.writer.flush()   # the round's candidates are readable from its start, not from its first α step
        self.reporter.emit("search_candidates", run_id=self.run_id, round=r,
                           incumbent=incumbent[0].hash if incumbent else None,
                           candidates=[g.hash for g in st.genotypes], genotypes=[g.to_dict() for g in st.genotypes])

    def _make_optimizers(self, st: _State) -> None:
        st.alpha = nn.Parameter(torch.zeros(len(st.models), device=self.device))
        params = [p for m in st.models for p in m.parameters()]
        st.w_opt = torch.optim.Adam(params, lr=self.cfg.w_lr)
        st.a_opt = torch.optim.Adam([st.alpha], lr=self.cfg.alpha_lr)

    def _weight_phase(self, st: _State) -> float:
        st.alpha.requires_grad_(False)
        mixture = Mixture(st.models, st.alpha)
        loss = float("nan")
        per_epoch = -(-len(self.train_y) // self.cfg.batch_size)
        total = per_epoch * self.cfg.w_epochs
        last = [0.0]

        def progress(epoch: int, batch: int) -> None:
            # a weight phase can take minutes: say how far it is, a few times a second at most
            done, now = epoch * per_epoch + batch, time.perf_counter()
            if now - last[0] >= WEIGHT_PROGRESS_S or done == total:
                last[0] = now
                self.reporter.emit("weight_progress", run_id=self.run_id, round=st.round, alternation=st.alternation,
                                   done=done, total=total)

        watch = Watch("FUSE weights", f"run {self.run_id}, round {st.round + 1}, alternation {st.alternation + 1}",
                      device=self.device)
        for epoch in range(self.cfg.w_epochs):
            loss = train_epoch(mixture, st.w_opt, self.train_x, self.train_y, device=self.device,
                               batch_size=self.cfg.batch_size, generator=self._gen, reporter=self.reporter,
                               on_batch=lambda batch, _loss, e=epoch: progress(e, batch), watch=watch)
        for m in st.models:   # the last step's update is in no loss yet: the weights a checkpoint would keep
            check_module(m, watch.stage, watch.step, watch.where)
        return loss

    def _alpha_phase(self, st: _State) -> None:
        for m in st.models:
            recalibrate_batchnorm(m, self.train_x, batch_size=self.cfg.batch_size)
        with torch.no_grad():
            logits = torch.stack([predict_logits(m, self.val_x, self.device) for m in st.models])
            y = self.val_y
            val_acc = [int(c) / len(y) for c in (logits.argmax(-1) == y).sum(1)]
        # The minibatch order comes from (seed, round, alternation), so a resumed run needs no extra RNG state.
        order = torch.Generator().manual_seed(derive_seed(self.seed, "alpha", st.round, st.alternation))
        st.alpha.requires_grad_(True)
        steps = alpha_steps(st.alpha, st.a_opt, logits, y, epochs=self.cfg.alpha_epochs,
                            batch_size=self.cfg.alpha_batch_size, generator=order)
        while True:
            self.reporter.check()
            loss_val = next(steps, None)
            if loss_val is None:
                break
            # checked before the step is appended: a diverged α never reaches the trajectory or a checkpoint
            where = f"run {self.run_id}, round {st.round + 1}"
            check(st.alpha, "FUSE alpha", self.writer.steps + 1, "alpha", where)
            check(loss_val, "FUSE alpha", self.writer.steps + 1, "val loss", where, counted=False)
            alpha = [float(a) for a in st.alpha.detach().cpu()]
            step = self.writer.append(alpha, st.round, st.alternation, st.loss_train, loss_val, val_acc)
            st.entropy.append(alpha_entropy(st.alpha))
            self.reporter.emit("alpha_step", run_id=self.run_id, step=step, round=st.round,
                               alternation=st.alternation, alpha=alpha, loss_train=st.loss_train,
                               loss_val=loss_val, val_acc=val_acc)
        st.alpha.requires_grad_(False)
        self._last_val_acc = val_acc

    def _end_round(self, st: _State) -> None:
        alpha = st.alpha.detach().cpu()
        best = int(torch.argmax(alpha))
        winner = st.genotypes[best]
        summary = {"round": st.round, "incumbent": winner.hash, "alpha": [float(a) for a in alpha],
                   "entropy": alpha_entropy(alpha), "val_acc": list(self._last_val_acc),
                   "candidates": [g.hash for g in st.genotypes],
                   "parameter_free_share": winner.parameter_free_share()}
        st.rounds.append(summary)
        st.incumbents.append(winner.hash)
        self.reporter.emit("search_round", run_id=self.run_id, round=st.round, incumbent=winner.hash,
                           candidates=[g.hash for g in st.genotypes], genotypes=[g.to_dict() for g in st.genotypes])
        if winner.parameter_free_share() >= COLLAPSE_SHARE:
            message = (f"search {self.run_id}: round {st.round} winner {winner.hash} has only parameter-free "
                       f"operations (skip / pooling / none) in its cells: the search collapsed")
            st.warnings.append(message)
            self.reporter.emit("warning", message=message, code="collapse")
        st.genotypes, st.models = [winner], [st.models[best]]
        st.alpha = st.w_opt = st.a_opt = None
        st.round += 1
        st.alternation = 0
        self.store.update_search(self.run_id, rounds=st.rounds, incumbents=st.incumbents, warnings=st.warnings,
                                 alpha_entropy=st.entropy)

    # -- checkpoints --------------------------------------------------------------------------------------------------
    def _checkpoint(self, st: _State) -> None:
        self.writer.flush()
        st.seconds = self._run.elapsed()
        blob = {
            "run_id": self.run_id,
            "config": dataclasses.asdict(self.cfg),
            "round": st.round,
            "alternation": st.alternation,
            "step": self.writer.committed_steps,
            "genotypes": [g.to_dict() for g in st.genotypes],
            "weights": [cpu_state(m) for m in st.models],
            "alpha": None if st.alpha is None else st.alpha.detach().cpu(),
            "w_opt": None if st.w_opt is None else st.w_opt.state_dict(),
            "a_opt": None if st.a_opt is None else st.a_opt.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": py_state(),
            "data_gen": self._gen.get_state(),
            "seconds": st.seconds,
            "loss_train": st.loss_train,
            "incumbents": st.incumbents,
            "warnings": st.warnings,
            "rounds": st.rounds,
            "entropy": st.entropy,
            "last_val_acc": getattr(self, "_last_val_acc", None),
        }
        if self.device.type == "cuda":
            blob["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        save_search_checkpoint(self.store, self.run_id, blob)
        self.store.update_search(self.run_id, checkpoint={"round": st.round, "alternation": st.alternation,
                                                          "step": blob["step"], "time": now()})

    def _restore(self) -> _State:
        blob = load_search_checkpoint(self.store, self.run_id)
        if blob is None:
            # Stopped before the first checkpoint: start again from the seed.
            self.writer.truncate(0)
            return _State()
        self.writer.truncate(int(blob["step"]))
        st = _State(round=blob["round"], alternation=blob["alternation"], entropy=list(blob["entropy"]),
                    seconds=float(blob["seconds"]), loss_train=float(blob["loss_train"]),
                    incumbents=list(blob["incumbents"]), warnings=list(blob["warnings"]), rounds=list(blob["rounds"]))
        st.genotypes = [Genotype.from_dict(g) for g in blob["genotypes"]]
        for g, weights in zip(st.genotypes, blob["weights"]):
            model = build_network(g, self.task.num_classes, self.in_channels, seed=0)
            model.load_state_dict(weights)
            st.models.append(prepare_model(model, self.device))
        if blob["alpha"] is not None:
            self._make_optimizers(st)
            with torch.no_grad():
                st.alpha.copy_(blob["alpha"].to(self.device))
            st.w_opt.load_state_dict(blob["w_opt"])
            st.a_opt.load_state_dict(blob["a_opt"])
        if blob.get("last_val_acc") is not None:
            self._last_val_acc = blob["last_val_acc"]
        torch.set_rng_state(blob["torch_rng"])
        random.setstate(py_unstate(blob["python_rng"]))
        if "cuda_rng" in blob and self.device.type == "cuda":
            torch.cuda.set_rng_state(blob["cuda_rng"], self.device)
        self._gen.set_state(blob["data_gen"])
        return st
