"""Memory: resident set of the Ahoy service with 0, 100, 500 and 1000 idle clients."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .fanout import Workers
from .servers import KINDS, Server


@dataclass
class MemoryPoint:
    clients: int
    connected: int
    rss_bytes: int
    threads: int


def run_memory(kind_name: str, sizes: list[int], log=print,
               compression: bool = True) -> list[MemoryPoint]:
    """Clients connect and say hello (no rooms), then sit idle; RSS from /proc/<pid>/status.

    With `compression` the clients offer permessage-deflate, as browsers do.
    """
    server = Server(KINDS[kind_name]).start()
    time.sleep(1.0)
    points = [MemoryPoint(0, 0, server.rss_bytes(), server.threads())]
    pool = Workers(server.ws_url, KINDS[kind_name].dialect, 2, compression)
    try:
        for n in sizes:
            grown = pool.call("grow", n, False, timeout=900)
            time.sleep(2.0)  # let the presence broadcasts drain
            p = MemoryPoint(n, sum(g["connected"] for g in grown), server.rss_bytes(),
                            server.threads())
            points.append(p)
            log(f"  {kind_name}: {p.connected} idle clients, RSS {p.rss_bytes / 2**20:.1f} MB, "
                f"{p.threads} threads")
    finally:
        pool.close()
        server.stop()
    return points


def bytes_per_connection(points: list[MemoryPoint]) -> float:
    first, last = points[0], points[-1]
    return (last.rss_bytes - first.rss_bytes) / max(1, last.connected - first.connected)
