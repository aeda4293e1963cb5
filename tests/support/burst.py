"""A BGP sender in a process of its own, to be killed mid-burst: ``python -m tests.support.burst PORT LOCAL ASN N``.

It connects from ``LOCAL`` (loopback) to the DRG on 127.0.0.1:``PORT``, sends OPEN and KEEPALIVE
(AS ``ASN``, hold 30 s), waits 0.3 s, then writes ``bench.blaster``'s ``N`` prefixes in 16 KiB slices
a few milliseconds apart (so a burst lasts long enough to be cut), printing ``sent K`` after each
slice, and then sleeps until killed.
"""

from __future__ import annotations

import socket
import sys
import time

from bench.blaster import encode_updates, keepalive, open_message


def main(port: int, local: str, asn: int, n: int) -> None:
    data = encode_updates(n, local_as=asn).data
    sock = socket.socket()
    sock.bind((local, 0))
    sock.connect(("127.0.0.1", port))
    sock.sendall(open_message(asn, local, 30) + keepalive())
    time.sleep(0.3)
    for offset in range(0, len(data), 16384):
        sock.sendall(data[offset : offset + 16384])
        print(f"sent {offset + 16384}", flush=True)
        time.sleep(0.004)
    while True:
        time.sleep(1)
        sock.sendall(keepalive())


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
