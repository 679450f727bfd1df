"""Where units of work run: `local` (in the engine's own process, exactly as without an executor) or `ray`.

A unit is a plain module-level function (e.g. `engine.similarity.units.train_probe_unit`) whose arguments and result
are plain data, tensors or numpy arrays. Compute code that can spread its work asks `executor.remote`; when it is
true it `put`s large inputs once, `submit`s units (handles of other units may be arguments: Ray resolves them, so
dependencies are object refs, never polling) and takes results from `completed(...)` as they arrive, writing each to
the store itself: workers never open the store. Progress that units report through `unit_reporter()` reaches the
job's reporter while the engine waits.

`local` keeps today's in-process code path (`remote` is False): nothing is submitted anywhere.
"""
from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable, Iterable, Iterator

from engine.config import ConfigError
from engine.runtime.reporting import Reporter


class ClusterLost(RuntimeError):
    """The Ray cluster went away during a job (head killed, network gone); the store keeps what arrived."""


class Executor:
    kind = "local"
    remote = False

    def start(self) -> None:
        """Connects / checks resources; raises ConfigError (naming the executor key) when it cannot."""

    def status(self) -> str:
        return self.kind

    def report_status(self, reporter: Reporter, job: str | None = None, force: bool = False) -> None:
        """Emits `executor_status` when the executor's reading changed since the last one (or `force`). Local: the
        reading never changes and the status line knows it already: nothing is sent."""

    def close(self) -> None:
        pass


class LocalExecutor(Executor):
    """Today's behaviour: every unit runs inline in the job's thread, in the order the code asks for it."""


def make_executor(section: Any, file: str | None = None, threads: int = 0) -> Executor:
    """The executor of a config's `[executor]` section; `threads` is `[project] threads` (0: one torch thread per
    CPU a unit asks for)."""
    if section is None or section.kind == "local":
        return LocalExecutor()
    if section.kind == "ray":
        return RayExecutor(section, file, threads)
    raise ConfigError(f"unknown executor {section.kind!r} (use local or ray)", file=file, key="executor.kind")


class UnitReporter(Reporter):
    """The reporter a remote unit gets: events go into the executor's queue, which the engine drains."""

    def __init__(self, queue: Any, unit: str):
        super().__init__(None)
        self.queue, self.unit = queue, unit

    def emit(self, event: str, **data: Any) -> None:
        try:
            self.queue.put_nowait((event, data))
        except Exception:  # noqa: BLE001 - a full or lost queue costs a progress line, never the unit
            pass

    def check(self) -> None:  # pause / stop are the engine's: it cancels outstanding units
        pass

    def __reduce__(self):
        return (UnitReporter, (self.queue, self.unit))


def _run_unit(fn: Callable[..., Any], threads: int, *args: Any) -> Any:
    """Runs in a Ray worker: one torch thread per CPU the unit was given (small networks oversubscribe otherwise)."""
    import torch

    torch.set_num_threads(max(1, threads))
    return fn(*args)


def _warm_worker() -> None:
    """Runs in a Ray worker before its first unit: the imports every unit pays once per worker process."""
    import engine.search.searching  # noqa: F401 - torch and the unit modules
    import engine.similarity.units  # noqa: F401


_WARMUP_SLOTS_MAX = 64        # a large cluster's first units start cold on the other workers: fine, they are many
_RAY_STARTED_HERE = False   # a local Ray this process started: kept for the process's lifetime (jobs reuse it)
_WARMED: set[str] = set()   # the clusters (GCS addresses) whose workers this process has warmed up


class RayExecutor(Executor):
    kind = "ray"
    remote = True

    def __init__(self, section: Any, file: str | None = None, threads: int = 0):
        self.section, self.file, self.threads = section, file, threads
        self._queue: Any = None
        self._remote_fn: Any = None
        self._outstanding: set[Any] = set()
        self._cluster_lost = False
        self._last_status: str | None = None
        self._job: str | None = None   # the job the readings are sent for (the first report names it)

    # ------------------------------------------------------------------ connection

    def start(self) -> None:
        global _RAY_STARTED_HERE
        try:
            import ray
        except ImportError:
            raise ConfigError("kind = \"ray\" needs Ray: pip install 'tanas-tui[ray]'", file=self.file,
                              key="executor.kind") from None
        address = self.section.address.strip()
        if not ray.is_initialized():
            self._check_reachable(address)
            # Ray's own reaction to a lost head is to end this process after its reconnect timeout (60 s); the
            # watchdog in completed() fails the job with a clear message well before that.
            os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", "300")
            try:
                if address:
                    ray.init(address=address, include_dashboard=False, logging_level="ERROR",
                             log_to_driver=False)
                else:
                    from engine.runtime.threads import usable_cpus

                    ray.init(address="local", num_cpus=usable_cpus(), include_dashboard=False, logging_level="ERROR",
                             log_to_driver=False)
                    _RAY_STARTED_HERE = True
            except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, ValueError, RuntimeError...
                raise ConfigError(f"cannot connect to the Ray cluster at {address or '(local)'!r}: "
                                  f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                                  file=self.file, key="executor.address") from None
        total = ray.cluster_resources()
        gpus = float(total.get("GPU", 0.0))
        if self.section.gpus_per_job > 0 and gpus < self.section.gpus_per_job:
            raise ConfigError(f"asks {self.section.gpus_per_job:g} GPU(s) per unit but the Ray cluster has "
                              f"{gpus:g} GPU(s); set gpus_per_job = 0 or join GPU nodes", file=self.file,
                              key="executor.gpus_per_job")
        cpus = float(total.get("CPU", 0.0))
        if self.section.cpus_per_job > cpus:
            raise ConfigError(f"asks {self.section.cpus_per_job:g} CPU(s) per unit but the Ray cluster has "
                              f"{cpus:g}", file=self.file, key="executor.cpus_per_job")
        if self._queue is None:
            from ray.util.queue import Queue

            self._queue = Queue(maxsize=10_000, actor_options={"num_cpus": 0})
        self._remote_fn = ray.remote(_run_unit)
        self._warm_up(cpus, gpus)

    def _warm_up(self, cpus: float, gpus: float) -> None:
        """Starts one worker per unit slot importing torch and the unit modules (2-5 s each), so that happens while
        the engine prepares the first units (data, the shared body) instead of before the first result.
        Fire-and-forget and `num_cpus = 0`: nothing waits for them and they never show as busy CPUs; Ray hands the
        warm, idle workers to the units that follow. Once per cluster per process (later jobs find them warm)."""
        import ray

        try:
            cluster = ray.get_runtime_context().gcs_address
        except Exception:  # noqa: BLE001
            return
        if cluster in _WARMED:
            return
        _WARMED.add(cluster)
        s = self.section
        slots = cpus / max(s.cpus_per_job, 1e-3)
        if s.gpus_per_job > 0:
            slots = min(slots, gpus / s.gpus_per_job)
        slots = min(_WARMUP_SLOTS_MAX, max(1, int(slots)))
        warm = ray.remote(_warm_worker).options(num_cpus=0, scheduling_strategy="SPREAD", name="warm-up")
        for _ in range(slots):
            warm.remote()

    def _check_reachable(self, address: str) -> None:
        """A host:port that nothing answers on fails in seconds here; Ray itself would retry for minutes."""
        import socket

        hostport = address[len("ray://"):] if address.startswith("ray://") else address
        if not hostport or hostport in ("auto", "local") or ":" not in hostport:
            return
        host, _, port = hostport.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
                pass
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Ray cluster at {address!r} ({type(exc).__name__}: {exc}); "
                              f"start it with `ray start --head` or fix the address", file=self.file,
                              key="executor.address") from None

    def status(self) -> str:
        """`ray: 3 nodes, 12/16 CPUs, 2/2 GPUs busy`."""
        import ray

        if not ray.is_initialized():
            return "ray: not connected (connects at the next job)"
        try:
            nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
            total, free = ray.cluster_resources(), ray.available_resources()
        except Exception as exc:  # noqa: BLE001
            return f"ray: unreachable ({type(exc).__name__})"
        cpu, gpu = float(total.get("CPU", 0)), float(total.get("GPU", 0))
        busy_cpu, busy_gpu = cpu - float(free.get("CPU", 0)), gpu - float(free.get("GPU", 0))
        return f"ray: {nodes} node{'s' if nodes != 1 else ''}, {busy_cpu:g}/{cpu:g} CPUs, {busy_gpu:g}/{gpu:g} GPUs busy"

    def report_status(self, reporter: Reporter, job: str | None = None, force: bool = False) -> None:
        if self._cluster_lost:  # asking a lost head would wait for Ray's reconnect timeout
            return
        self._job = job or self._job
        text = self.status()
        if force or text != self._last_status:
            self._last_status = text
            reporter.emit("executor_status", executor=text, job=self._job)

    # ------------------------------------------------------------------ units

    @property
    def device(self) -> str:
        """The device units compute on: GPUs only when units ask for them (and start() checked the cluster has)."""
        return "cuda" if self.section.gpus_per_job > 0 else "cpu"

    def put(self, obj: Any) -> Any:
        import ray

        return ray.put(obj)

    def unit_reporter(self, unit: str) -> Reporter:
        return UnitReporter(self._queue, unit)

    def submit(self, fn: Callable[..., Any], *args: Any, name: str = "", num_returns: int = 1) -> Any:
        s = self.section
        threads = self.threads or max(1, int(s.cpus_per_job))
        ref = self._remote_fn.options(num_cpus=s.cpus_per_job, num_gpus=s.gpus_per_job or None,
                                      max_retries=s.max_retries, retry_exceptions=False,
                                      num_returns=num_returns, name=name or fn.__name__).remote(fn, threads, *args)
        for r in (ref if num_returns > 1 else [ref]):
            self._outstanding.add(r)
        return ref

    def completed(self, handles: Iterable[Any], reporter: Reporter) -> Iterator[tuple[Any, Any]]:
        """(handle, result) for each handle as its unit finishes, draining worker events into `reporter` and
        honouring stop requests (outstanding units are cancelled). A unit's own error is raised as is."""
        import ray

        from engine.service.protocol import STATUS_INTERVAL

        pending = list(handles)
        next_probe = time.monotonic() + STATUS_INTERVAL
        try:
            while pending:
                self.drain(reporter)
                reporter.check()
                if time.monotonic() >= next_probe:
                    self._check_head()
                    self.report_status(reporter)   # live busy counts for the status line
                    next_probe = time.monotonic() + STATUS_INTERVAL
                try:
                    ready, pending = ray.wait(pending, num_returns=1, timeout=0.1)
                except Exception as exc:  # noqa: BLE001
                    raise self._lost(exc) from None
                for ref in ready:
                    try:
                        value = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the unit's own error, with its own type
                        cause = getattr(exc, "cause", None)
                        raise (cause if isinstance(cause, Exception) else exc.as_instanceof_cause()) from None
                    except ray.exceptions.WorkerCrashedError:
                        raise RuntimeError(f"a unit's worker died {self.section.max_retries + 1} times "
                                           f"(executor.max_retries = {self.section.max_retries})") from None
                    except (ray.exceptions.RaySystemError, ray.exceptions.ObjectLostError,
                            ray.exceptions.NodeDiedError) as exc:
                        raise self._lost(exc) from None
                    self._outstanding.discard(ref)
                    yield ref, value
            self.drain(reporter)
        except ClusterLost:
            self._outstanding.clear()  # nothing to cancel on a cluster that is gone (and ray.cancel would wait)
            raise
        except BaseException:  # stop, Ctrl-C, a failed unit: nothing left running for this job
            cancelled = self.cancel()
            if cancelled:
                reporter.emit("log", level="warning",
                              message=f"cancelled the job's outstanding Ray units ({cancelled})")
            raise

    def _check_head(self) -> None:
        """Raises ClusterLost when the cluster's GCS (the head) stops accepting connections (two tries)."""
        import ray

        try:
            host, _, port = ray.get_runtime_context().gcs_address.rpartition(":")
        except Exception:  # noqa: BLE001 - no address known: nothing to watch
            return
        for attempt in range(2):
            try:
                with socket.create_connection((host, int(port)), timeout=3):
                    return
            except OSError as exc:
                if attempt:
                    raise self._lost(exc) from None
                time.sleep(1.0)

    def drain(self, reporter: Reporter) -> None:
        if self._queue is None:
            return
        try:
            items = self._queue.get_nowait_batch(self._queue.qsize())
        except Exception:  # noqa: BLE001 - empty, or the queue actor is gone with the cluster
            return
        for event, data in items:
            reporter.emit(event, **data)

    def cancel(self) -> int:
        """Cancels every outstanding unit of this executor (stop, Ctrl-C, a failed job); returns how many."""
        import ray

        cancelled = 0
        for ref in list(self._outstanding):
            try:
                ray.cancel(ref, force=True)
                cancelled += 1
            except Exception:  # noqa: BLE001 - already finished, or the cluster is gone
                pass
        self._outstanding.clear()
        return cancelled

    def _lost(self, exc: BaseException) -> ClusterLost:
        self._cluster_lost = True
        address = self.section.address or "(local)"
        return ClusterLost(f"lost the Ray cluster at {address!r} during the job ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); what arrived is in the store: run the "
                           f"job again when the cluster is back")

    def close(self) -> None:
        """Cancels what is outstanding and ends this job's event queue (an actor; one per job)."""
        self.cancel()
        if self._queue is not None and not self._cluster_lost:
            import ray

            try:
                ray.kill(self._queue.actor)
            except Exception:  # noqa: BLE001 - the cluster may be gone
                pass
            self._queue = None

