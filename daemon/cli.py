"""The ``aaiti`` command line.

Options of the verbs that name a config or a daemon (``--config``, ``--url``, ``--token``,
``--token-file``, ``--timeout``, ``--json``) are accepted before the verb too:
``aaiti --config X status``, ``aaiti --url U --token T kill``. ``aaiti --version`` prints
the version. When stdout is closed early (``aaiti check-config aaiti.toml | head -1``) the
command ends quietly with 141 (128 + SIGPIPE, as a process killed by the signal would).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from config.errors import ConfigError
from config.loader import LoadedConfig, load_config
from config.render import config_to_plain
from daemon import exit_codes

DEFAULT_CONFIG = "aaiti.toml"
#: ``aaiti ... | head``: the reader went away; the exit status of a process killed by SIGPIPE.
BROKEN_PIPE = exit_codes.FORCED_BASE + signal.SIGPIPE
#: (option, flag) of the verbs' options that may also be given before the verb.
GLOBAL_OPTIONS = (("config", "--config"), ("url", "--url"), ("token", "--token"), ("token_file", "--token-file"),
                  ("timeout", "--timeout"), ("json", "--json"))
#: Verbs, registered by their own modules, that load the strategies of the config named by ``--config``.
STRATEGY_VERBS = frozenset({"backtest", "sweep"})


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
    if args.config is not None and args.path not in (DEFAULT_CONFIG, args.config):
        print(f"aaiti: check-config: two config files given ({args.path} and {args.config}); name one",
              file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    path = args.config if args.config is not None else args.path
    loaded = _load_or_exit(path)
    from actors.strategy_api import use_strategy_dirs
    from daemon.reloader import strategy_issues

    use_strategy_dirs(loaded)
    issues = strategy_issues(loaded.config)
    if issues:
        raise _exit_invalid(ConfigError(str(path), issues))
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
    from actors.strategy_api import use_strategy_dirs

    use_strategy_dirs(loaded)  # before anything imports a strategy: start-up and every reload check
    cfg = loaded.config
    logging_setup = LoggingSetup(cfg.log.level, cfg.log.ring_size, log_format=cfg.log.format)

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

Archived rows ([retention] moves old rows to segment files in the archive directory):
  - without --archive, the live rows are checked from the recorded archive cut on (the
    first live row links to the last archived row's hash), and the cut and the list of
    segments are checked against their HMACs. That proves the live rows, and that the
    rows before the cut were removed by someone holding the key; it says nothing about
    the archived rows themselves;
  - with --archive [DIR] (default: the archive directory of [retention] archive_dir, in
    the state directory), every recorded segment must also be there with the content
    that was signed (any archived order, event, fill, denial or audit row changed,
    added or removed is caught, and so is a missing segment), and the whole chain is
    checked from row 1 through the segments into the live rows, HMACs included. DIR is
    the archive directory or the database's own subdirectory of it.
"""


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check the audit log (chain, HMACs, head, file integrity); name the first bad row (exit 4) or say OK."""
    from adapters.storage.audit import AuditKey, default_audit_key_path, load_audit_key, verify_audit
    from adapters.storage.errors import StoreError
    from adapters.storage.paths import state_db_path
    from adapters.storage.retention import archive_root, segment_dir

    if args.db:
        db = Path(args.db)
        root = archive_root(db.parent, "archive")
    else:
        loaded = _load_or_exit(args.config)
        cfg = loaded.config
        state_dir = loaded.resolve(cfg.daemon.state_dir)
        db = state_db_path(state_dir, cfg.daemon.mode, cfg.venue.name)
        root = archive_root(state_dir, cfg.retention.archive_dir)
    archive: Path | None = None
    if args.archive is not None:
        given = Path(args.archive).expanduser() if args.archive else root
        archive = segment_dir(given, db) if segment_dir(given, db).is_dir() else given
    try:
        key: AuditKey | None
        if args.key_file:  # an explicit file wins over the credential
            explicit = Path(args.key_file).expanduser()
            key = load_audit_key(explicit, environ={})
            if key is None:
                raise StoreError(f"audit key {explicit}: no such file, or empty", reason="audit_key")
        else:
            key = load_audit_key(default_audit_key_path(db))
        report = verify_audit(db, key, archive_dir=archive)
    except StoreError as exc:
        print(f"aaiti: {exc}", file=sys.stderr)
        return exit_codes.STATE_ERROR
    print(report.summary())
    return exit_codes.OK if report.ok else exit_codes.STATE_ERROR


def cmd_sim(args: argparse.Namespace) -> int:
    """Run the Binance spot simulator alone (flags: ``aaiti sim --help``, the simulator's own)."""
    from adapters.binance_sim import __main__ as sim_cli

    return sim_cli.main(list(args.sim_args))


def cmd_new_strategy(args: argparse.Namespace) -> int:
    """Write a documented strategy module and print the ``[[strategies]]`` block that runs it."""
    from actors.strategy_api import strategy_dirs
    from daemon.templates import class_name_for, render_strategy, strategy_block, validate_module_name

    name = args.name
    problem = validate_module_name(name)
    if problem is not None:
        print(f"aaiti: new-strategy {name!r}: {problem}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    config = args.config or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).exists() else None)
    loaded = _load_or_exit(config) if config else None
    dirs = strategy_dirs(loaded) if loaded is not None else ()
    directory = Path(args.dir).resolve() if args.dir else (dirs[0] if dirs else Path("strategies").resolve())
    target = directory / f"{name}.py"
    if target.exists() and not args.force:
        print(f"aaiti: {target} exists (--force overwrites it)", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.origin != str(target):
        print(f"aaiti: new-strategy {name!r}: that module name is taken ({spec.origin}); choose another",
              file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(render_strategy(name), encoding="utf-8")
    feed = loaded.config.feed if loaded is not None else None
    print(strategy_block(name, feed.symbols[0] if feed else "XRP/ETH", feed.timeframes[0] if feed else "1m"))
    where = loaded.path if loaded is not None and loaded.path else Path(config or DEFAULT_CONFIG)
    print(f"aaiti: wrote {target} (class {class_name_for(name)}); the [[strategies]] block on stdout runs it: "
          f"add it to {where} (or append it with >>), then run `aaiti check-config {where}`", file=sys.stderr)
    if loaded is not None and directory not in dirs:
        print(f"aaiti: {directory} is not one of the config's strategy directories: add it to "
              f'[daemon] strategy_dirs = ["{directory}"]', file=sys.stderr)
    return exit_codes.OK


def _version() -> str:
    try:
        return importlib.metadata.version("aaiti")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    """The verbs' config and connection options, accepted before the verb as well (``GLOBAL_OPTIONS``)."""
    g = parser.add_argument_group("options of the verbs, also accepted before the verb")
    g.add_argument("--config", "-c", dest="global_config", metavar="CONFIG", help="config file")
    g.add_argument("--url", dest="global_url", metavar="URL", help="admin API base URL")
    g.add_argument("--token", dest="global_token", metavar="TOKEN", help="admin bearer token")
    g.add_argument("--token-file", dest="global_token_file", metavar="FILE", help="file holding the admin token")
    g.add_argument("--timeout", dest="global_timeout", type=float, metavar="SECONDS", help="admin request timeout")
    g.add_argument("--json", dest="global_json", action="store_true", default=None, help="JSON output")


def _apply_global_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Hand options given before the verb to the verb (one given after it wins)."""
    for name, flag in GLOBAL_OPTIONS:
        value = getattr(args, f"global_{name}")
        delattr(args, f"global_{name}")
        if value is None:
            continue
        target = "path" if name == "config" and args.command == "check-config" else name
        if not hasattr(args, target):
            parser.error(f"{flag} does not apply to 'aaiti {args.command}'")
        current = getattr(args, target)
        if current is None or current is False or (target in ("config", "path") and current == DEFAULT_CONFIG):
            setattr(args, target, value)


def _prepare_strategy_dirs(args: argparse.Namespace) -> None:
    """Make the strategy directories of a backtest's config importable before the verb loads its strategies."""
    if args.command not in STRATEGY_VERBS:
        return
    from actors.strategy_api import use_strategy_dirs

    try:
        loaded = load_config(Path(getattr(args, "config", None) or DEFAULT_CONFIG))
    except ConfigError:
        return  # the verb reads the file itself and reports its problems
    use_strategy_dirs(loaded)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    # No abbreviations at this level: it sees the verbs' arguments too, and `backtest --to`
    # must not be taken for an ambiguous `--token`.
    parser = argparse.ArgumentParser(prog="aaiti", description="aaiti trading daemon", allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"aaiti {_version()}")
    _add_global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the daemon")
    p.add_argument("--config", "-c", default=None, help=f"config file (default: ./{DEFAULT_CONFIG} if present)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check-config", help="validate a config file and print the effective config")
    p.add_argument("path", nargs="?", default=DEFAULT_CONFIG, help=f"config file (default: ./{DEFAULT_CONFIG})")
    # Every other verb takes --config after the verb: so does this one (as another way to name PATH).
    p.add_argument("--config", "-c", default=None, metavar="PATH", help="the config file, as PATH")
    p.set_defaults(func=cmd_check_config)
    p = sub.add_parser("new-strategy", help="write a documented strategy template and print its [[strategies]] block",
                       description="Writes NAME.py, a complete, commented strategy (params struct, on_bar, buy/sell) "
                                   "into a strategy directory of the config, and prints the [[strategies]] block that "
                                   "runs it (stdout; append it to the config with >>).")
    p.add_argument("name", metavar="NAME", help="module name, e.g. my_breakout (class MyBreakout)")
    p.add_argument("--dir", default=None,
                   help="directory to write into (default: the first of the config's [daemon] strategy_dirs)")
    p.add_argument("--config", "-c", default=None, help=f"config file (default: ./{DEFAULT_CONFIG} if present)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_new_strategy)
    p = sub.add_parser("audit", help="audit log tools")
    audit = p.add_subparsers(dest="audit_command", required=True)
    v = audit.add_parser("verify", help="verify the audit log: hash chain, HMACs, head, file integrity",
                         description=AUDIT_VERIFY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("--db", default=None, help="state database (default: from the config)")
    v.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="config naming the state directory")
    v.add_argument("--key-file", default=None, help="audit key file (default: see above)")
    v.add_argument("--archive", nargs="?", const="", default=None, metavar="DIR",
                   help="also check the archived rows' segment files (default DIR: the state directory's archive)")
    v.set_defaults(func=cmd_audit_verify)
    from daemon.cli_admin import add_admin_commands
    from daemon.cli_contingent import add_contingent_command

    add_admin_commands(sub, more=(add_contingent_command,))
    from daemon.backtest.command import add_backtest_command  # `aaiti backtest`; the pipeline is imported when it runs

    add_backtest_command(sub)
    from daemon.backtest.sweep_command import add_sweep_command  # `aaiti sweep`; optuna/dask load when it runs

    add_sweep_command(sub)
    from daemon.data.command import add_data_commands  # `aaiti data download`; ccxt is imported only when it runs

    add_data_commands(sub)
    # No arguments of its own (not even -h): everything after "sim" is the simulator's, left
    # over by parse_known_args in main(). (argparse.REMAINDER would drop leading options.)
    p = sub.add_parser("sim", help="run the Binance spot simulator on 127.0.0.1 (options: aaiti sim --help)",
                       add_help=False)
    p.set_defaults(func=cmd_sim, sim_args=[])
    return parser


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.func is cmd_sim:
        args.sim_args = extra  # in the order given; the simulator's parser judges them
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _apply_global_options(parser, args)
    _prepare_strategy_dirs(args)
    return int(args.func(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aaiti`` console script."""
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # buffered output meets a closed pipe here, inside the handler below
    except BrokenPipeError:
        # The reader is gone (`| head`). Send what is still buffered to /dev/null, so the
        # interpreter's own flush at exit cannot fail again and print a traceback. Python
        # ignores SIGPIPE (it raises this error instead); the daemon needs that, so it stays.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return BROKEN_PIPE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
