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


def _exit_invalid(exc: ConfigError) -> SystemExit:
    print(f"aaiti: invalid config ({len(exc.issues)} problem(s)):", file=sys.stderr)
    for issue in exc.issues:
        print(f"  {issue.render(exc.source)}", file=sys.stderr)
    return SystemExit(exit_codes.CONFIG_ERROR)


def _load_or_exit(path: str | None) -> LoadedConfig:
    try:
        return load_config(Path(path) if path else None)
    except ConfigError as exc:
        raise _exit_invalid(exc) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    """Print the effective config (secrets redacted) or the errors (exit 2).

    Runs every check ``aaiti run`` makes on the file before it starts anything: the schema,
    then each strategy's class and params (``strategy_issues``).
    """
    loaded = _load_or_exit(args.path)
    from daemon.reloader import strategy_issues

    issues = strategy_issues(loaded.config)
    if issues:
        raise _exit_invalid(ConfigError(str(args.path), issues))
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


AUDIT_VERIFY_HELP = """\
Checks the audit log of a state database, read-only (safe while the daemon runs), and
names the first bad row (exit 4) or prints OK (exit 0). It checks:
  - every row's SHA-256 chain link and content hash;
  - every keyed row's HMAC-SHA256 under the audit key, that every row from the signed
    keyed-from record on is keyed, and that no unkeyed row follows a keyed one;
  - that the recorded head is signed by the key and names the last row (a deleted or
    rewritten tail is caught);
  - PRAGMA integrity_check of the whole file.
Rows written before the key existed (databases from before audit keys) are reported as
"unkeyed before row N": they are protected by the hash chain only.
It cannot detect: a rewrite by someone holding both the key and the database (they can
re-sign everything); the whole file being rolled back to an earlier copy of itself (a
restored backup); a file downgraded to the unkeyed schema (key columns dropped). Keep
the key away from the database (the systemd credential audit_key) and copy the head
line elsewhere if those matter. The default key file lives in the state directory: it
protects against edits of the database file (or of a copy) alone, not against someone
who can read the state directory.
The key: --key-file, else the systemd credential audit_key ($CREDENTIALS_DIRECTORY),
else audit.key in the state directory (beside the database), as the daemon uses it.
"""


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check the audit log (chain, HMACs, head, file integrity); name the first bad row (exit 4) or say OK."""
    from adapters.storage.audit import AuditKey, default_audit_key_path, load_audit_key, verify_audit
    from adapters.storage.errors import StoreError
    from adapters.storage.paths import state_db_path

    if args.db:
        db = Path(args.db)
    else:
        loaded = _load_or_exit(args.config)
        cfg = loaded.config
        db = state_db_path(loaded.resolve(cfg.daemon.state_dir), cfg.daemon.mode, cfg.venue.name)
    try:
        key: AuditKey | None
        if args.key_file:  # an explicit file wins over the credential
            explicit = Path(args.key_file).expanduser()
            key = load_audit_key(explicit, environ={})
            if key is None:
                raise StoreError(f"audit key {explicit}: no such file, or empty", reason="audit_key")
        else:
            key = load_audit_key(default_audit_key_path(db))
        report = verify_audit(db, key)
    except StoreError as exc:
        print(f"aaiti: {exc}", file=sys.stderr)
        return exit_codes.STATE_ERROR
    print(report.summary())
    return exit_codes.OK if report.ok else exit_codes.STATE_ERROR


def cmd_sim(args: argparse.Namespace) -> int:
    """Run the Binance spot simulator alone (flags: ``aaiti sim --help``, the simulator's own)."""
    from adapters.binance_sim import __main__ as sim_cli

    return sim_cli.main(list(args.sim_args))


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
    p = sub.add_parser("audit", help="audit log tools")
    audit = p.add_subparsers(dest="audit_command", required=True)
    v = audit.add_parser("verify", help="verify the audit log: hash chain, HMACs, head, file integrity",
                         description=AUDIT_VERIFY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("--db", default=None, help="state database (default: from the config)")
    v.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="config naming the state directory")
    v.add_argument("--key-file", default=None, help="audit key file (default: see above)")
    v.set_defaults(func=cmd_audit_verify)
    from daemon.cli_admin import add_admin_commands

    add_admin_commands(sub)
    from daemon.backtest.command import add_backtest_command  # `aaiti backtest`; the pipeline is imported when it runs

    add_backtest_command(sub)
    from daemon.data.command import add_data_commands  # `aaiti data download`; ccxt is imported only when it runs

    add_data_commands(sub)
    # No arguments of its own (not even -h): everything after "sim" is the simulator's, left
    # over by parse_known_args in main(). (argparse.REMAINDER would drop leading options.)
    p = sub.add_parser("sim", help="run the Binance spot simulator on 127.0.0.1 (options: aaiti sim --help)",
                       add_help=False)
    p.set_defaults(func=cmd_sim, sim_args=[])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aaiti`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.func is cmd_sim:
        args.sim_args = extra  # in the order given; the simulator's parser judges them
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    code = int(args.func(args))
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
