"""Run the daemon's software stack under systemd's MemoryDenyWriteExecute=yes seccomp rules.

systemd implements ``MemoryDenyWriteExecute=yes`` (seccomp-util.c) as a seccomp filter
refusing with EPERM: ``mmap`` with both PROT_WRITE and PROT_EXEC, ``mprotect`` and
``pkey_mprotect`` with PROT_EXEC, and ``shmat`` with SHM_EXEC. This script installs the
same filter (x86-64 only), then re-executes the interpreter so that everything — the
interpreter start, every extension module load — runs under it, like ``ExecStart=``.

Usage: ``python mdwe_probe.py`` → exit 0 and "MDWE-OK" on the last line.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

# Run after exec, under the filter: import what the daemon imports and exercise it.
WORKLOAD = r"""
import asyncio, ctypes, errno, mmap, sys
sys.path.insert(0, sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
# The filter must be active, or this probe proves nothing.
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    raise SystemExit("W+X mapping was allowed: filter not active")
except PermissionError:
    pass
page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE)
addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
assert libc.mprotect(ctypes.c_void_p(addr), 4096, mmap.PROT_READ | mmap.PROT_EXEC) != 0
assert ctypes.get_errno() == errno.EPERM

import aiohttp, aiosqlite, msgspec, orjson, prometheus_client, structlog, uvloop
import ccxt, ccxt.pro
from aiohttp import web
import daemon.cli, daemon.app, daemon.admin.server, daemon.metrics, daemon.sd_notify, daemon.cli_admin

async def main():
    app = web.Application()
    app.router.add_get("/", lambda request: web.Response(text="ok"))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/") as resp:
            assert await resp.text() == "ok"
    async with aiosqlite.connect(":memory:") as db:
        await db.execute("CREATE TABLE t (x)")
        await db.commit()
    await runner.cleanup()
    callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)  # a libffi closure
    assert callback(41) == 42
    exchange = ccxt.pro.binance()
    await exchange.close()
    daemon.metrics.Metrics().render_now()

uvloop.run(main())
print("MDWE-OK")
"""

_ALLOW, _EPERM = 0x7FFF0000, 0x00050000 | 1
_LD_ABS, _JEQ, _JSET, _AND, _RET = 0x20, 0x15, 0x45, 0x54, 0x06
_AUDIT_ARCH_X86_64 = 0xC000003E
_NR_MMAP, _NR_MPROTECT, _NR_SHMAT, _NR_PKEY_MPROTECT = 9, 10, 30, 329
_ARG2 = 16 + 2 * 8  # offsetof(struct seccomp_data, args[2]), low 32 bits on little-endian
_PROT_WRITE, _PROT_EXEC, _SHM_EXEC = 0x2, 0x4, 0o100000

# (code, jump if true, jump if false, k); jumps are relative to the next instruction.
PROGRAM = (
    (_LD_ABS, 0, 0, 4),                            # 0  A = arch
    (_JEQ, 1, 0, _AUDIT_ARCH_X86_64),              # 1
    (_RET, 0, 0, _ALLOW),                          # 2  other ABIs: not our concern
    (_LD_ABS, 0, 0, 0),                            # 3  A = syscall nr
    (_JEQ, 4, 0, _NR_MMAP),                        # 4  -> 9
    (_JEQ, 6, 0, _NR_MPROTECT),                    # 5  -> 12
    (_JEQ, 5, 0, _NR_PKEY_MPROTECT),               # 6  -> 12
    (_JEQ, 6, 0, _NR_SHMAT),                       # 7  -> 14
    (_RET, 0, 0, _ALLOW),                          # 8
    (_LD_ABS, 0, 0, _ARG2),                        # 9  mmap: prot
    (_AND, 0, 0, _PROT_WRITE | _PROT_EXEC),        # 10
    (_JEQ, 5, 4, _PROT_WRITE | _PROT_EXEC),        # 11 W and X -> 17 deny, else 16 allow
    (_LD_ABS, 0, 0, _ARG2),                        # 12 mprotect: prot
    (_JSET, 3, 2, _PROT_EXEC),                     # 13 X -> 17 deny, else 16 allow
    (_LD_ABS, 0, 0, _ARG2),                        # 14 shmat: flags
    (_JSET, 1, 0, _SHM_EXEC),                      # 15 SHM_EXEC -> 17 deny
    (_RET, 0, 0, _ALLOW),                          # 16
    (_RET, 0, 0, _EPERM),                          # 17
)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_filter() -> None:
    """Install the filter on this process (inherited across execve)."""
    libc = ctypes.CDLL(None, use_errno=True)
    raw = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in PROGRAM))
    prog = _SockFprog(len(PROGRAM), ctypes.addressof(raw))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP failed")


def main() -> None:
    """Install the filter, then become ``python -c WORKLOAD <repo>``."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    install_filter()
    os.execv(sys.executable, [sys.executable, "-c", WORKLOAD, repo])


if __name__ == "__main__":
    main()
