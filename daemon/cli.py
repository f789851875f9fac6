"""The ``aaiti`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from config.errors import ConfigError
from config.loader import LoadedConfig, load_config
from config.render import config_to_plain
from daemon import exit_codes

DEFAULT_CONFIG = "aaiti.toml"


def _load_or_exit(path: str | None) -> LoadedConfig:
    try:
        return load_config(Path(path) if path else None)
    except ConfigError as exc:
        print(f"aaiti: invalid config ({len(exc.issues)} problem(s)):", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue.render(exc.source)}", file=sys.stderr)
        raise SystemExit(exit_codes.CONFIG_ERROR) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    """Print the effective config (secrets redacted) or the errors (exit 2)."""
    loaded = _load_or_exit(args.path)
    print(json.dumps(config_to_plain(loaded.config), indent=2, sort_keys=False))
    print(f"aaiti: config OK: {loaded.path or '<embedded defaults>'}", file=sys.stderr)
    return exit_codes.OK


def cmd_run(args: argparse.Namespace) -> int:
    """Start the daemon."""
    from daemon.app import App
    from daemon.logging_setup import LoggingSetup
    from daemon.runtime import run_loop, serve

    path = args.config
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    loaded = _load_or_exit(path)
    cfg = loaded.config
    logging_setup = LoggingSetup(cfg.log.level, cfg.log.ring_size)

    async def main() -> int:
        app = App(loaded, logging_setup)
        return await serve(app)

    return run_loop(main, use_uvloop=cfg.daemon.use_uvloop)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="aaiti", description="aaiti trading daemon")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the daemon")
    p.add_argument("--config", "-c", default=None, help=f"config file (default: ./{DEFAULT_CONFIG} if present)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check-config", help="validate a config file and print the effective config")
    p.add_argument("path", nargs="?", default=DEFAULT_CONFIG)
    p.set_defaults(func=cmd_check_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aaiti`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    code = int(args.func(args))
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
