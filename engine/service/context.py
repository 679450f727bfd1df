"""The one thing a job receives: `JobContext` (store, config, device, reporter, job id, the dictionary).

The engine server and the front end's in-process runner both build one per job; every job is `fn(ctx, **params)`.
The config is loaded and the device resolved at first use, inside the job, so a broken config or an unknown device
fails that job (reported in its `job_done`), not the engine.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.runtime.reporting import SILENT, Reporter


class JobContext:
    """Everything a job needs. `config` may be given, or loaded from `config_path` (the engine's store forced with
    `store_path`); `device` may be a name ("auto", "cpu", "cuda"), a torch.device, or None for the config's."""

    def __init__(self, store: Any, config: Any = None, device: Any = None, reporter: Reporter = SILENT,
                 job_id: str = "", *, config_path: str | Path | None = None, store_path: Path | None = None):
        self.store, self.reporter, self.job_id = store, reporter, job_id
        self.config_path, self.store_path = config_path, store_path
        self._config, self._device_spec = config, device
        self._device: Any = None
        self._dictionary: Any = None
        self._executor: Any = None

    def for_job(self, job_id: str, reporter: Reporter, *, config: str | Path | None = None,
                device: str | None = None) -> "JobContext":
        """A context for one job of this engine / process: `config` (a file) and `device` override its own."""
        return JobContext(self.store, None if config else self._config, device or self._device_spec, reporter,
                          job_id, config_path=config or self.config_path, store_path=self.store_path)

    @property
    def config(self):
        if self._config is None:
            self._config = load_job_config(self.config_path, self.store_path)
        return self._config

    @property
    def device(self):
        """The torch device, resolved once ("auto" becomes cuda when available)."""
        if self._device is None:
            from engine.runtime.device import resolve_device

            self._device = resolve_device(self._device_spec or self.config.project.device)
        return self._device

    @property
    def dictionary(self):
        """The task dictionary over this store, built once per job; its events carry this job's id."""
        if self._dictionary is None:
            from engine.similarity.dictionary import Dictionary

            self._dictionary = Dictionary(self.store, self.config, self.device, self.reporter, job=self.job_id,
                                          executor=self.executor)
        return self._dictionary

    @property
    def executor(self):
        """Where this job's units run (`[executor]`): started (connected, resources checked) at first use."""
        if self._executor is None:
            from engine.service.executor import make_executor

            executor = make_executor(self.config.executor, self.config.file, self.config.project.threads)
            executor.start()
            self._executor = executor
        return self._executor

    @property
    def has_executor(self) -> bool:
        return self._executor is not None

    def close_executor(self) -> None:
        if self._executor is not None:
            self._executor.close()


def load_job_config(config_path: str | Path | None, store_path: Path | None):
    """The config for one job, re-read each time so edits apply to the next job. The store is always the engine's
    own (clients find the engine through their config's store, so the two agree)."""
    from engine.config import load_config

    overrides = {"project.store": str(store_path)} if store_path is not None else {}
    return load_config(config_path, os.environ, overrides)
