"""`python -m engine --store PATH [--config FILE] [--device DEV] [--idle-exit MINUTES]`: the engine for one store.

Normally started detached by `tanas_tui.client.start_engine`; runs in the foreground when started by hand.
Exit codes: 0 after a clean shutdown, 2 bad arguments or config, 4 the store is locked (another engine or a
`tanas-tui run` holds it) or cannot be opened.
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
    parser.add_argument("--config", type=Path, help="config file the jobs use (re-read at each job)")
    parser.add_argument("--device", help="auto | cpu | cuda (default: the config's [project] device)")
    parser.add_argument("--client-queue", type=int, default=DEFAULT_CLIENT_QUEUE,
                        help="events a client may fall behind before it is dropped")
    parser.add_argument("--idle-exit", type=float, default=None,
                        help="minutes without a job or a following client before exiting; 0 = never "
                             "(default: the config's [engine] idle_exit)")
    args = parser.parse_args(argv)

    from engine.config import ConfigError, EngineSection, load_config

    store = args.store
    idle_exit = EngineSection().idle_exit
    if args.config is not None or store is None:
        try:
            overrides = {"project.store": str(store.resolve())} if store is not None else {}
            cfg = load_config(args.config, None, overrides, check_classes=False)
        except ConfigError as exc:
            print(f"engine: {exc}", file=sys.stderr)
            return EXIT_USAGE
        store = cfg.store_path
        idle_exit = cfg.engine.idle_exit
    if args.idle_exit is not None:
        idle_exit = args.idle_exit
    if args.client_queue < 1:
        print("engine: --client-queue must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    if not idle_exit >= 0:
        print("engine: --idle-exit must be >= 0 minutes", file=sys.stderr)
        return EXIT_USAGE

    from store import StoreError, StoreLocked

    server = EngineServer(store, args.config, args.device, client_queue=args.client_queue, idle_exit=idle_exit)
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
