"""`python -m engine --store PATH [--config FILE] [--device DEV] [--idle-exit MINUTES]`: the engine for one store.

Normally started detached by `tanas_tui.client.start_engine`; runs in the foreground when started by hand.
The engine's own config (for jobs that carry none, and its status) is resolved once, here: the file, the environment
it was started with, then --store and --device. Jobs from the CLI carry their own, resolved where they were typed.
Exit codes: 0 after a clean shutdown, 2 bad arguments or config, 4 the store is locked (another engine or a
`tanas-tui run` holds it) or cannot be opened, 128 + N after signal N (143: SIGTERM, 130: SIGINT).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.service.server import DEFAULT_CLIENT_QUEUE, EXIT_STORE, EXIT_USAGE, EngineServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description="The tanas-tui engine for one store.")
    parser.add_argument("--store", type=Path, help="store directory (default: the config's [project] store)")
    parser.add_argument("--config", type=Path, help="config file of jobs that carry no config of their own")
    parser.add_argument("--device", help="auto | cpu | cuda (default: the config's [project] device)")
    parser.add_argument("--client-queue", type=int, default=DEFAULT_CLIENT_QUEUE,
                        help="events a client may fall behind before it is dropped")
    parser.add_argument("--idle-exit", type=float, default=None,
                        help="minutes without a job or a following client before exiting; 0 = never "
                             "(default: the config's [engine] idle_exit)")
    args = parser.parse_args(argv)

    from engine.config import ConfigError, load_config

    overrides = {"project.store": str(args.store.resolve())} if args.store is not None else {}
    if args.device:
        overrides["project.device"] = args.device
    try:
        cfg = load_config(args.config, None, overrides, check_classes=False)
    except ConfigError as exc:
        print(f"engine: {exc}", file=sys.stderr)
        return EXIT_USAGE
    idle_exit = cfg.engine.idle_exit if args.idle_exit is None else args.idle_exit
    if args.client_queue < 1:
        print("engine: --client-queue must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    if not 0 <= idle_exit <= 525_600:   # NaN fails too
        print("engine: --idle-exit must be from 0 to 525600 minutes (a year)", file=sys.stderr)
        return EXIT_USAGE

    from store import StoreError, StoreLocked

    server = EngineServer(cfg.store_path, cfg, client_queue=args.client_queue, idle_exit=idle_exit)
    try:
        server.open()
    except StoreLocked as exc:
        print(f"engine: cannot start: {exc}", file=sys.stderr)
        return EXIT_STORE
    except StoreError as exc:
        print(f"engine: cannot open the store: {exc}", file=sys.stderr)
        return EXIT_STORE
    print(f"engine: pid {os.getpid()} serving {server.store_path}", file=sys.stderr, flush=True)
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
