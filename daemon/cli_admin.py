"""CLI verbs over the admin API: ``aaiti status|orders|fills|positions|balances|risk|cancel|strategy
start/stop|pause|resume|kill|reload|logs|contingent`` (``contingent``: ``daemon.cli_contingent``).

``add_admin_commands(subparsers)`` registers them on the ``aaiti`` parser. Each talks to
a running daemon over HTTP (stdlib ``urllib``, synchronous — no event loop needed):

- URL: ``--url``, else ``$AAITI_ADMIN_URL``, else ``admin.host``/``admin.port`` of the
  config (``--config``, else ``$AAITI_CONFIG``, ``./aaiti.toml``, ``/etc/aaiti/aaiti.toml``).
- Token: ``--token``, ``--token-file``; with a URL given, ``$AAITI_ADMIN_TOKEN``; else the
  daemon's own lookup (the env var named by ``admin.token_env``, ``$CREDENTIALS_DIRECTORY``,
  ``admin.token_file``, ``admin.token``).
- The config: with a URL and a token given it is not read at all; otherwise only its
  ``[admin]`` section is, so a mistake elsewhere in the file never blocks ``aaiti kill``.
- Output: readable tables, prices and sizes at their instrument's tick and step size and money
  at its asset's precision (``Precision``, from the running config: ``GET /config``), never
  in exponent notation; ``--json`` prints the API's JSON for scripts.
- Exit codes: 0 ok; 6 the daemon is not reachable; 7 the token was refused; 2 invalid
  config or a request the daemon calls invalid (400, a refused reload); 1 any other
  refusal (404 unknown order, 409 kill switch engaged, …) or a daemon error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from config.errors import ConfigError, ConfigIssue
from config.fields import setting
from config.schema.ops import AdminSection
from config.validation import build_section
from daemon import exit_codes
from daemon.admin.auth import TokenError, resolve_token
from daemon.admin.backend import RESUME_CONFIRMATION
from daemon.cli_format import NO_PRECISION, Precision, cell, key_values, ms_time, table

REFUSED = 1  # a request the daemon understood and refused (404, 409) or failed on (5xx)
CONFIG_CANDIDATES = ("aaiti.toml", "/etc/aaiti/aaiti.toml")


class CliError(Exception):
    """Stop the command with a one-line message and an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class ApiError(CliError):
    """The daemon answered with an error document."""

    def __init__(self, status: int, body: Any, code: int) -> None:
        self.status = status
        self.body = body
        if isinstance(body, dict) and "message" in body:
            text = f"{body['message']} ({status} {body.get('error', '')})"
        else:
            text = f"HTTP {status}: {str(body)[:200]}"
        super().__init__(text, code)


# -- the HTTP client ----------------------------------------------------------------------------
class AdminClient:
    """Minimal synchronous client of the admin API (proxies from the environment are ignored)."""

    def __init__(self, base_url: str, token: str | None, timeout: float = 10.0, token_note: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.token_note = token_note
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _request(self, method: str, path: str, query: Mapping[str, Any] | None, body: Any) -> urllib.request.Request:
        url = self.base_url + path
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return urllib.request.Request(url, data=data, headers=headers, method=method)

    def _open(self, req: urllib.request.Request, timeout: float | None) -> Any:
        try:
            return self._opener.open(req, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload: Any = json.loads(raw)
            except ValueError:
                payload = raw.decode(errors="replace")
            if exc.code == 401:
                hint = f" ({self.token_note})" if self.token_note else ""
                detail = payload.get("message", "") if isinstance(payload, dict) else ""
                raise CliError(
                    f"admin token refused by {self.base_url}: {detail or 'unauthorized'}{hint}", exit_codes.AUTH_ERROR
                ) from None
            code = exit_codes.CONFIG_ERROR if exc.code == 400 else REFUSED
            raise ApiError(exc.code, payload, code) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            text = getattr(reason, "strerror", None) or str(reason)
            raise CliError(f"daemon not running? cannot reach {self.base_url}: {text}",
                           exit_codes.NOT_RUNNING) from None

    def call(self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        """One request; the decoded JSON body of a 2xx answer."""
        req = self._request(method, path, query, body)
        with self._open(req, self.timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def events(self, path: str, query: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        """Server-Sent Events of a streaming GET as (event, data); comments are skipped."""
        req = self._request("GET", path, query, None)
        req.add_header("Accept", "text/event-stream")
        with self._open(req, None) as resp:
            event, data = "message", None
            for raw in resp:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if line.startswith(":"):
                    continue
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].lstrip()
                elif not line and data is not None:
                    yield event, data
                    event, data = "message", None


# -- configuration --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _AdminOnly:
    """The one part of aaiti.toml the CLI reads: the rest may be mid-edit and must not block it."""

    admin: AdminSection = setting(factory=AdminSection, doc="Admin HTTP endpoint.")


@dataclasses.dataclass(frozen=True)
class AdminSettings:
    """The ``[admin]`` section of the local config, and the file it came from (None: defaults)."""

    section: AdminSection
    path: Path | None
    base_dir: Path


def _config_issue(source: str, message: str) -> CliError:
    return _invalid(ConfigError(source, [ConfigIssue("", message)]))


def _invalid(exc: ConfigError) -> CliError:
    lines = [f"invalid config ({len(exc.issues)} problem(s)):"] + [f"  {i.render(exc.source)}" for i in exc.issues]
    return CliError("\n".join(lines), exit_codes.CONFIG_ERROR)


def load_admin_settings(path: str | None) -> AdminSettings:
    """Read and validate only ``[admin]`` of the config (``path``, else ``$AAITI_CONFIG``, the candidates).

    A mistake elsewhere in the file (a strategy being edited, a typo in ``[risk]``) must
    never keep ``aaiti kill`` from reaching the daemon; a broken ``[admin]``, unreadable
    file or invalid TOML is a ``CliError`` (exit 2) naming the file and the key.
    """
    candidate = path or os.environ.get("AAITI_CONFIG")
    if not candidate:
        candidate = next((c for c in CONFIG_CANDIDATES if Path(c).is_file()), None)
    if not candidate:
        return AdminSettings(AdminSection(), None, Path.cwd())
    file = Path(candidate)
    source = str(file)
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise _config_issue(source, "file not found") from None
    except OSError as exc:
        raise _config_issue(source, f"cannot read file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise _config_issue(source, f"not UTF-8 text (byte {exc.start})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _config_issue(source, f"invalid TOML: {exc}") from None
    table = {"admin": document["admin"]} if "admin" in document else {}
    only, issues = build_section(_AdminOnly, table)
    if issues or only is None:
        raise _invalid(ConfigError(source, issues))
    return AdminSettings(only.admin, file.resolve(), file.resolve().parent)


def _base_url(settings: AdminSettings) -> str:
    admin = settings.section
    where = settings.path or "the built-in defaults"
    if not admin.enabled:
        raise CliError(f"the admin API is disabled in {where} (admin.enabled = false)", exit_codes.NOT_RUNNING)
    if admin.port == 0:
        raise CliError(f"admin.port is 0 (a random port) in {where}: pass --url", exit_codes.CONFIG_ERROR)
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(admin.host, admin.host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{admin.port}"


def _token_from_args(args: argparse.Namespace) -> tuple[str | None, str]:
    if args.token:
        return args.token, "token from --token"
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip() or None
        except OSError as exc:
            raise CliError(f"cannot read --token-file {args.token_file}: {exc.strerror}",
                           exit_codes.CONFIG_ERROR) from None
        return token, f"token from {args.token_file}"
    return None, ""


def _token_from_config(settings: AdminSettings) -> tuple[str | None, str]:
    try:
        resolved = resolve_token(settings.section, base_dir=settings.base_dir)
    except TokenError as exc:
        print(f"aaiti: warning: {exc}; continuing without a token", file=sys.stderr)
        return None, str(exc)
    if resolved is None:
        return None, "no token configured: pass --token or set $AAITI_ADMIN_TOKEN"
    return resolved.value, f"token from {resolved.source}"


def make_client(args: argparse.Namespace) -> AdminClient:
    """The client for ``args`` (URL, token and timeout resolved as the module docstring says).

    With the URL (``--url`` / ``$AAITI_ADMIN_URL``) and a token (``--token``, ``--token-file``
    or ``$AAITI_ADMIN_TOKEN``) given, the config file is not read at all; otherwise only its
    ``[admin]`` section is (``load_admin_settings``).
    """
    url = args.url or os.environ.get("AAITI_ADMIN_URL") or None
    timeout = args.timeout if args.timeout is not None else DEFAULT_TIMEOUT_S
    token, note = _token_from_args(args)
    env_name = AdminSection().token_env
    if token is None and not args.token_file and url and os.environ.get(env_name, "").strip():
        token, note = os.environ[env_name].strip(), f"token from ${env_name}"
    if url and (token is not None or args.token_file):
        return AdminClient(url, token, timeout, note)
    settings = load_admin_settings(args.config)
    if token is None and not args.token_file:
        token, note = _token_from_config(settings)
    return AdminClient(url or _base_url(settings), token, timeout, note)


def fetch_precision(client: AdminClient) -> Precision:
    """The running daemon's precision (``GET /config``); none when the daemon does not say."""
    try:
        view = client.call("GET", "/config")
    except ApiError:
        return NO_PRECISION
    config = view.get("config") if isinstance(view, dict) else None
    return Precision.from_config(config) if isinstance(config, dict) else NO_PRECISION


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def status_value(key: str, value: Any) -> str:
    """One value of ``/status`` as text: durations rounded (``*_s`` to ms, ``*_ms`` to 0.1 ms), times
    (``*ts_ms``, ``*time_ms``, ``*_at``) as UTC, nested objects as ``key=value`` pairs, empty ones as
    "-", anything else as ``cell``."""
    if isinstance(value, int) and not isinstance(value, bool) and key.endswith(("ts_ms", "time_ms")):
        return ms_time(value)
    if isinstance(value, float):
        if key.endswith("_ms"):
            return f"{value:.1f}"
        if key.endswith("_s"):
            return f"{value:.3f}" if value < 10 else f"{value:.1f}"
        if key.endswith("_at") and value > 0:
            return ms_time(round(value * 1000))
    if isinstance(value, dict | list) and not value:
        return "-"
    if isinstance(value, dict):
        return " ".join(f"{k}={status_value(k, v)}" for k, v in value.items() if not k.endswith("_ns"))
    return cell(value)


def _status_rows(rows: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{k: status_value(k, v) for k, v in row.items() if not k.endswith("_ns")} for row in rows]


def render_status(status: Mapping[str, Any], title: str = "") -> str:
    """Key/value block of the scalars, then a section per nested object with lists and a table per list
    of objects. Process-internal stamps (``*_ns``) are left out; ``--json`` shows everything."""
    scalars: list[tuple[str, str]] = []
    sections: list[str] = []
    for key, value in status.items():
        if key.endswith("_ns"):
            continue
        if key == "health" and isinstance(value, dict):
            reasons = "; ".join(value.get("reasons") or [])
            scalars.append((key, f"{value.get('status')}" + (f" ({reasons})" if reasons else "")))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            sections.append(f"\n\n{title}{key}:\n" + table(_status_rows(value)))
        elif isinstance(value, dict) and any(isinstance(v, list) and v for v in value.values()):
            sections.append(f"\n\n{title}{key}:\n" + render_status(value, f"{title}{key}."))
        else:
            scalars.append((key, status_value(key, value)))
    return key_values(scalars) + "".join(sections)


def render_trading(state: Mapping[str, Any]) -> str:
    """One line for a trading-state result."""
    kill = "ENGAGED" if state.get("kill_switch") else "off"
    reason = f" (reason: {state['reason']})" if state.get("reason") else ""
    return f"trading {state.get('state')}, kill switch {kill}{reason}"


def render_log(rec: Mapping[str, Any], precision: Precision = NO_PRECISION) -> str:
    """A log record as a readable line: time level actor event key=value... (numbers at ``precision``)."""
    skip = {"timestamp", "level", "event", "actor", "logger"}
    extras = " ".join(f"{k}={precision.cell(k, v, rec)}" for k, v in rec.items() if k not in skip)
    ts = str(rec.get("timestamp", ""))[:23]
    who = rec.get("actor") or rec.get("logger") or "-"
    return f"{ts} {str(rec.get('level', '')).upper():<8} {who:<14} {rec.get('event', '')} {extras}".rstrip()


def render_risk(risk: Mapping[str, Any], precision: Precision = NO_PRECISION) -> str:
    """``GET /risk``: state, usage and money as a key/value block, then the limits and the denials by reason."""
    scalars: list[tuple[str, str]] = []
    for key, value in risk.items():
        if key == "ts_ms":
            scalars.append(("time", ms_time(value)))
        elif not isinstance(value, dict):
            scalars.append((key, precision.cell(key, value, {})))
    text = key_values(scalars)
    limits = risk.get("limits")
    if isinstance(limits, dict):
        plain = [(k, cell(v)) for k, v in limits.items() if not isinstance(v, dict) or v]
        text += "\n\nlimits:\n" + key_values(plain)
    denied = risk.get("denied_by_reason")
    if isinstance(denied, dict) and denied:
        rows = [{"reason": k, "denials": v} for k, v in sorted(denied.items(), key=lambda kv: (-kv[1], kv[0]))]
        text += "\n\ndenials by reason:\n" + table(rows)
    return text


# -- commands -----------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace, client: AdminClient) -> int:
    """Show the daemon overview."""
    data = client.call("GET", "/status")
    print(json.dumps(data, indent=2) if args.json else render_status(data))
    return exit_codes.OK


ORDER_COLUMNS = ("client_order_id", "strategy", "symbol", "side", "type", "mode", "size", "price", "filled",
                 "status", "updated")


def cmd_orders(args: argparse.Namespace, client: AdminClient) -> int:
    """List orders (or show one)."""
    if args.client_order_id:
        detail = client.call("GET", "/orders/" + urllib.parse.quote(args.client_order_id, safe=""))
        if args.json:
            _print_json(detail)
        else:
            print(render_order(detail, fetch_precision(client)))
        return exit_codes.OK
    page = client.call("GET", "/orders", {"status": args.status, "symbol": args.symbol, "strategy": args.strategy,
                                          "limit": args.limit, "offset": args.offset})
    if args.json:
        _print_json(page)
        return exit_codes.OK
    rows = [{**o, "updated": ms_time(o.get("updated_ms"))} for o in page["orders"]]
    columns = list(ORDER_COLUMNS)
    if any(o.get("trigger_price") is not None for o in rows):  # native stops and take-profits
        columns.insert(columns.index("price") + 1, "trigger_price")
    print(table(rows, columns, fetch_precision(client)))
    return exit_codes.OK


EVENT_COLUMNS = ("id", "time", "status", "previous", "filled", "reason", "trade_id")


def render_order(detail: Mapping[str, Any], precision: Precision = NO_PRECISION) -> str:
    """``GET /orders/{id}``: the order as a key/value block, then its events as a table."""
    order = detail["order"]
    block = key_values([(k, precision.cell(k, v, order)) for k, v in order.items()])
    symbol = order.get("symbol")
    events = [{**e, "time": ms_time(e.get("ts_ms")), "symbol": symbol} for e in detail.get("events") or []]
    return f"{block}\n\nevents:\n{table(events, EVENT_COLUMNS, precision)}"


def _listing(path: str, key: str, columns: Sequence[str]) -> Callable[[argparse.Namespace, AdminClient], int]:
    """A verb printing the list ``key`` of ``GET path`` (a table of the ``columns`` present, or JSON)."""

    def run(args: argparse.Namespace, client: AdminClient) -> int:
        data = client.call("GET", path)
        if args.json:
            _print_json(data)
            return exit_codes.OK
        rows = data[key]
        present = [c for c in columns if any(c in r for r in rows)] or None
        print(table(rows, present, fetch_precision(client)))
        return exit_codes.OK

    run.__doc__ = f"Show ``GET {path}`` as a table."
    return run


cmd_positions = _listing("/positions", "positions",
                         ("symbol", "size", "avg_price", "realized_pnl", "unrealized_pnl", "fees", "fills"))
cmd_balances = _listing("/balances", "balances", ("asset", "free", "locked", "total"))
FILL_COLUMNS = ("time", "trade_id", "client_order_id", "symbol", "side", "price", "size", "fee", "fee_currency",
                "liquidity")


def cmd_fills(args: argparse.Namespace, client: AdminClient) -> int:
    """List fills in the order they were stored (filtered by order or symbol, paged)."""
    page = client.call("GET", "/fills", {"client_order_id": args.order, "symbol": args.symbol, "limit": args.limit,
                                         "offset": args.offset})
    if args.json:
        _print_json(page)
        return exit_codes.OK
    rows = [{**f, "time": ms_time(f.get("ts_ms"))} for f in page["fills"]]
    print(table(rows, FILL_COLUMNS, fetch_precision(client)))
    return exit_codes.OK


def cmd_risk(args: argparse.Namespace, client: AdminClient) -> int:
    """Show the trading state, risk limits and their usage."""
    data = client.call("GET", "/risk")
    print(json.dumps(data, indent=2) if args.json else render_risk(data, fetch_precision(client)))
    return exit_codes.OK


def cmd_cancel(args: argparse.Namespace, client: AdminClient) -> int:
    """Ask the daemon to cancel one order (the venue confirms later: see ``aaiti orders ID``)."""
    path = "/orders/" + urllib.parse.quote(args.client_order_id, safe="") + "/cancel"
    result = client.call("POST", path, body={"reason": args.reason} if args.reason else {})
    print(json.dumps(result, indent=2) if args.json else f"cancel requested: {args.client_order_id}")
    return exit_codes.OK


def cmd_strategy(args: argparse.Namespace, client: AdminClient) -> int:
    """Start or stop one strategy instance (``aaiti strategy start|stop NAME``)."""
    action = args.strategy_command
    result = client.call("POST", f"/strategies/{urllib.parse.quote(args.name, safe='')}/{action}", body={})
    print(json.dumps(result, indent=2) if args.json else f"strategy {args.name}: {action} accepted")
    return exit_codes.OK


def _trading_command(path: str, body: dict[str, Any]) -> Any:
    def run(args: argparse.Namespace, client: AdminClient) -> int:
        state = client.call("POST", path, body=body | ({"reason": args.reason} if args.reason else {}))
        print(json.dumps(state, indent=2) if args.json else render_trading(state))
        return exit_codes.OK

    return run


def cmd_resume(args: argparse.Namespace, client: AdminClient) -> int:
    """Resume trading (``--confirm`` lifts an engaged kill switch)."""
    body = {"confirm": RESUME_CONFIRMATION} if args.confirm else {}
    return int(_trading_command("/resume", body)(args, client))


def cmd_reload(args: argparse.Namespace, client: AdminClient) -> int:
    """Ask the daemon to reload its config file."""
    try:
        result = client.call("POST", "/reload")
    except ApiError as exc:
        if exc.status != 409 or not isinstance(exc.body, dict):
            raise
        if args.json:
            _print_json(exc.body)
        else:
            print(f"config reload refused: {exc.body.get('result')}; running config unchanged "
                  f"(version {exc.body.get('version')})", file=sys.stderr)
            for err in exc.body.get("errors", []):
                print(f"  {err}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    if args.json:
        _print_json(result)
    else:
        changed = ", ".join(result.get("changed") or []) or "nothing"
        print(f"config reload {result.get('result')}: version {result.get('version')}, changed: {changed}")
    return exit_codes.OK


def cmd_logs(args: argparse.Namespace, client: AdminClient) -> int:
    """Show recent log records; ``-f`` follows new ones."""
    query = {"n": args.n, "level": args.level, "logger": args.logger}
    precision = NO_PRECISION if args.json else fetch_precision(client)
    if not args.follow:
        data = client.call("GET", "/logs", query)
        for rec in data["records"]:
            print(json.dumps(rec) if args.json else render_log(rec, precision))
        return exit_codes.OK
    try:
        for event, data in client.events("/logs", {**query, "follow": 1}):
            if event == "end":
                print("aaiti: the daemon closed the log stream (it is stopping)", file=sys.stderr)
                break
            if event == "log":
                print(data if args.json else render_log(json.loads(data), precision), flush=True)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        raise  # `aaiti logs -f | head`: the CLI's entry point ends quietly
    except (ConnectionError, OSError) as exc:
        raise CliError(f"log stream interrupted: {exc}", exit_codes.NOT_RUNNING) from None
    return exit_codes.OK


def _run(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            client = make_client(args)
            return int(handler(args, client))
        except CliError as exc:
            print(f"aaiti: {exc}", file=sys.stderr)
            return exc.code

    return run


DEFAULT_TIMEOUT_S = 10.0


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection (also accepted before the verb: aaiti --url U --token T status)")
    g.add_argument("--config", "-c", default=None,
                   help="config file giving admin.host/port and the token sources "
                        "(default: $AAITI_CONFIG, ./aaiti.toml, /etc/aaiti/aaiti.toml)")
    g.add_argument("--url", default=None, help="admin API base URL, e.g. http://127.0.0.1:8787 ($AAITI_ADMIN_URL)")
    g.add_argument("--token", default=None, help="bearer token (default: $AAITI_ADMIN_TOKEN or the configured source)")
    g.add_argument("--token-file", default=None, help="file holding the bearer token")
    g.add_argument("--timeout", type=float, default=None,
                   help=f"request timeout in seconds (default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--json", action="store_true", help="print the API's JSON instead of tables")
    return p


def add_admin_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    more: Sequence[Callable[[Callable[..., argparse.ArgumentParser]], None]] = (),
) -> None:
    """Register the admin verbs on the ``aaiti`` sub-command parser (each sets ``func``).

    ``more``: registrars of further admin verbs (e.g. ``cli_contingent.add_contingent_command``),
    each called with ``add(name, help, handler)``, which gives a verb this module's connection
    options, ``--json``, error handling and exit codes.
    """
    common = _common()
    epilog = ("exit codes: 0 ok, 6 daemon not reachable, 7 token refused, 2 invalid request or config, "
              "1 refused (unknown order, kill switch engaged, ...)")

    def add(name: str, help_text: str, handler: Any,
            where: argparse._SubParsersAction[argparse.ArgumentParser] = subparsers) -> argparse.ArgumentParser:
        p = where.add_parser(name, parents=[common], help=help_text, description=help_text, epilog=epilog)
        p.set_defaults(func=_run(handler))
        return p

    add("status", "show the running daemon's state", cmd_status)
    p = add("orders", "list orders, newest first (or show one)", cmd_orders)
    p.add_argument("client_order_id", nargs="?", help="show this order")
    p.add_argument("--status", help="comma-separated statuses, or 'open' / 'terminal'")
    p.add_argument("--symbol")
    p.add_argument("--strategy")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    p = add("fills", "list fills in the order they were stored", cmd_fills)
    p.add_argument("--order", help="only the fills of this client order id")
    p.add_argument("--symbol")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    add("positions", "show positions per symbol", cmd_positions)
    add("balances", "show balances per asset", cmd_balances)
    add("risk", "show the trading state, risk limits and their usage", cmd_risk)
    p = add("cancel", "request the cancel of one open order", cmd_cancel)
    p.add_argument("client_order_id", help="the order's client order id (see aaiti orders --status open)")
    p.add_argument("--reason", default="", help="recorded in the audit log")
    p = subparsers.add_parser("strategy", help="start or stop a strategy instance",
                              description="start or stop a strategy instance of the running daemon")
    strategy = p.add_subparsers(dest="strategy_command", required=True, metavar="{start,stop}")
    for action in ("start", "stop"):
        p = add(action, f"{action} the strategy instance NAME ([[strategies]] name)", cmd_strategy, strategy)
        p.add_argument("name", metavar="NAME", help="the instance name (see aaiti status)")
    p = add("pause", "pause trading (only position-reducing orders)", _trading_command("/pause", {}))
    p.add_argument("--reason", default="", help="recorded in the audit log")
    p = add("resume", "resume trading", cmd_resume)
    p.add_argument("--confirm", action="store_true", help="also lift an engaged kill switch")
    p.add_argument("--reason", default="", help="recorded in the audit log")
    p = add("kill", "engage the kill switch: halt trading (persists across restarts)", _trading_command("/kill", {}))
    p.add_argument("--reason", default="", help="recorded in the audit log")
    add("reload", "reload the config file (hot-reloadable fields only)", cmd_reload)
    p = add("logs", "show recent log records", cmd_logs)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new records (Ctrl-C to stop)")
    p.add_argument("-n", type=int, default=50, help="number of recent records (default 50)")
    p.add_argument("--level", choices=["debug", "info", "warning", "error", "critical"], help="minimum level")
    p.add_argument("--logger", help="only records of this actor")
    for register in more:
        register(add)
