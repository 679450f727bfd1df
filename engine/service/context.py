"""The one thing a job receives: `JobContext` (store, config, device, reporter, job id, the dictionary).

The engine server and the front end's in-process runner both build one per job; every job is `fn(ctx, **params)`.
The config is the job's own, resolved once where the job was submitted (engine.service.jobs.submission); the device
is resolved at first use, inside the job, so an unavailable device fails that job (reported in its `job_done`), not
the engine.
"""
from __future__ import annotations

from typing import Any

from engine.runtime.reporting import SILENT, Reporter


class JobContext:
    """Everything a job needs. `config`: the job's `engine.config.Config` (None for jobs that need none: sleep,
    export, remove_search); `device`: a name ("auto", "cpu", "cuda"), a torch.device, or None for the config's."""

    def __init__(self, store: Any, config: Any = None, device: Any = None, reporter: Reporter = SILENT,
                 job_id: str = ""):
        self.store, self.reporter, self.job_id = store, reporter, job_id
        self._config, self._device_spec = config, device
        self._device: Any = None
        self._dictionary: Any = None
        self._executor: Any = None

    @property
    def given_config(self) -> Any:
        """The config this context was given (None when none was)."""
        return self._config

    def with_config(self, config: Any, device: Any = None) -> "JobContext":
        """The same job (store, reporter, id) with its own config and, when given, device."""
        return JobContext(self.store, config, device or self._device_spec, self.reporter, self.job_id)

    @property
    def config(self):
        if self._config is None:
            from engine.config import ConfigError

            raise ConfigError(f"job {self.job_id or '?'} was given no config")
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
