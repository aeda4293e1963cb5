#!/usr/bin/env python3
"""FIFO bridge between a test and one ExaBGP process (exabgp-lab.md, recipe 4).

ExaBGP starts this file as its API helper (`process { run PYTHON bridge.py ...; }`) with three
absolute paths: the command FIFO, the events file and a pid file. The bridge

* writes its own pid to the pid file (atomically, after the FIFO is open), so that whoever started
  ExaBGP can kill it by PID: ExaBGP puts its helpers in their own process group (gotcha 4);
* copies every line ExaBGP writes on its stdin (JSON events and the plain `done`/`error` answers)
  to the events file, line-buffered, and exits as soon as that stdin reaches EOF (ExaBGP is gone);
* copies every line written into the FIFO to its stdout, flushed, for ExaBGP to execute. The FIFO
  is opened O_RDWR, so it never sees EOF between two writers and no command is lost.

Only the standard library is used: ExaBGP may run it with any Python 3.
"""

from __future__ import annotations

import os
import stat
import sys
import threading


def _write_pid(path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def _pump_events(events: str) -> None:
    with open(events, "a", buffering=1, encoding="utf-8") as out:
        for line in sys.stdin:  # keep reading, or ExaBGP stalls on a full pipe (gotcha 4)
            out.write(line)
    os._exit(0)  # stdin EOF: ExaBGP is gone, so is the reason to live


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        sys.stderr.write("usage: bridge.py FIFO EVENTS PIDFILE (absolute paths)\n")
        return 2
    fifo, events, pidfile = (os.path.abspath(a) for a in argv[1:4])
    if not stat.S_ISFIFO(os.stat(fifo).st_mode):
        sys.stderr.write(f"{fifo} is not a FIFO: mkfifo it before starting ExaBGP\n")
        return 2
    threading.Thread(target=_pump_events, args=(events,), daemon=True).start()
    with open(os.open(fifo, os.O_RDWR), encoding="utf-8") as commands:
        _write_pid(pidfile)
        for line in commands:
            sys.stdout.write(line)
            sys.stdout.flush()  # ExaBGP only sees flushed, newline-ended lines
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
