"""Several boxes as one site: cross-box fan-out, catch-up after a split, memory.

    python -m bench.site                 3 boxes, 300 clients, rooms of 50, 20 and 200 msg/s
    python -m bench.site --quick         a smoke run (2 boxes, 60 clients, rooms of 20)

Every box is a real nats-server and a real Ahoy service (gevent) on loopback,
as in tests/site/. Clients are asyncio `websockets` in this process, spread
over the boxes (client i on box i mod B); every room has members on every
box. Each message carries the time it was meant to be sent (CLOCK_MONOTONIC)
so latency includes any wait. The same clients and rooms on one box alone
run in the same invocation, as the baseline.

Then the catch-up: all nats-servers stop (the site splits into boxes
alone), box 0's phones send `--catchup` messages, the servers start again,
and the time until every box holds every message is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench site secret, long enough"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Box:
    root: Path
    site: bool
    index: int
    peers: list[Box] = field(default_factory=list)
    http: int = field(default_factory=free_port)
    https: int = field(default_factory=free_port)
    nats_port: int = field(default_factory=free_port)
    ahoy: subprocess.Popen[bytes] | None = None
    nats: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def prepare(self) -> None:
        from provisioning import credentials, site
        from provisioning.config import BoxConfig

        self.data.mkdir(parents=True, exist_ok=True)
        if self.site:
            credentials.set_site_secret(self.data, SECRET)
            self.paths, _ = site.ensure_site_files(BoxConfig(site_name="bench"), self.data, SECRET,
                                                   listen="127.0.0.1", port=self.nats_port)

    def start_nats(self) -> None:
        self.nats = subprocess.Popen(["nats-server", "-c", str(self.paths.nats_config)],
                                     stdout=open(self.root / "nats.log", "ab"),
                                     stderr=subprocess.STDOUT)
        _wait_port(self.nats_port)

    def stop_nats(self) -> None:
        if self.nats is not None:
            self.nats.terminate()
            self.nats.wait(10)
            self.nats = None

    def start(self) -> None:
        if self.site:
            self.start_nats()
        args = [sys.executable, "-m", "appliance", "serve", "--host", "127.0.0.1", "--no-mdns",
                "--config", str(self.root / "none.txt"), "--data-dir", str(self.data),
                "--port", str(self.http), "--https-port", str(self.https),
                # Every client comes from 127.0.0.1 here.
                "--max-connections-per-client", "4000", "--max-unfinished-per-client", "256"]
        if self.site:
            args += ["--site-name", "bench", "--site-port", str(self.nats_port)]
            for peer in self.peers:
                args += ["--site-peer", f"127.0.0.1:{peer.nats_port}"]
        env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock", PYTHONUNBUFFERED="1")
        self.ahoy = subprocess.Popen(args, cwd=REPO, env=env,
                                     stdout=open(self.root / "ahoy.log", "ab"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.health()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"box {self.index} did not start")

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/healthz", timeout=20) as r:
            data: dict[str, Any] = json.load(r)
            return data

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http}/ws"

    def stop(self) -> None:
        for process in (self.ahoy, self.nats):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def wait_until(condition: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not _holds(condition):
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - start


def _holds(condition: Any) -> bool:
    try:
        return bool(condition())
    except OSError:  # a box too busy to answer /healthz within its timeout
        return False


def quiet_site(boxes: list[Box], timeout: float = 120) -> float:
    """Wait until no box has anything to publish or to read."""
    def quiet() -> bool:
        for box in boxes:
            site = box.health().get("site") or {}
            if site.get("outbox") or site.get("lag") or site.get("waiting") or (
                    site.get("linked") != len(boxes) - 1):
                return False
        return True

    return wait_until(quiet, timeout, "the site settling")


# -- clients -------------------------------------------------------------------------


@dataclass
class Client:
    index: int
    box: int
    ws: Any = None
    user_id: str = ""
    pending: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    got: dict[str, int] = field(default_factory=dict)  # message id -> times received
    latencies: list[tuple[float, bool]] = field(default_factory=list)  # (ms, same box)


class Crowd:
    def __init__(self, urls: list[str], clients: int, room_size: int) -> None:
        self.urls = urls
        self.clients = [Client(i, i % len(urls)) for i in range(clients)]
        self.room_size = room_size
        self.rooms: list[tuple[str, list[Client]]] = []
        self.sent_by: dict[str, Client] = {}
        self.readers: list[asyncio.Future[None]] = []

    async def request(self, c: Client, frame: dict[str, Any], timeout: float = 20) -> Any:
        ref = uuid.uuid4().hex[:10]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        c.pending[ref] = future
        await c.ws.send(json.dumps({**frame, "ref": ref}))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            c.pending.pop(ref, None)

    async def read(self, c: Client) -> None:
        try:
            async for raw in c.ws:
                m = json.loads(raw)
                ref = m.get("ref")
                if ref in c.pending:
                    c.pending[ref].set_result(m)
                    continue
                if m.get("type") == "message" and m.get("from") != c.user_id:
                    text = m.get("text", "")
                    if text.startswith("B|"):
                        _, sent_ns, msg_id = text.split("|")[:3]
                        c.got[msg_id] = c.got.get(msg_id, 0) + 1
                        if c.got[msg_id] == 1:
                            sender = self.sent_by.get(msg_id)
                            late = (time.monotonic_ns() - int(sent_ns)) / 1e6
                            c.latencies.append((late, sender is not None and
                                                sender.box == c.box))
        except websockets.ConnectionClosed:
            pass

    async def connect(self) -> None:
        sem = asyncio.Semaphore(32)

        async def one(c: Client) -> None:
            async with sem:
                c.ws = await websockets.connect(self.urls[c.box], max_size=2**22,
                                                open_timeout=30, ping_interval=None)
                self.readers.append(asyncio.ensure_future(self.read(c)))
                welcome = await self.request(c, {"type": "hello", "name": f"c{c.index}-{c.box}"})
                assert welcome["type"] == "welcome", welcome
                c.user_id = welcome["you"]["id"]

        await asyncio.gather(*(one(c) for c in self.clients))

    async def make_rooms(self) -> None:
        for start in range(0, len(self.clients) - self.room_size + 1, self.room_size):
            members = self.clients[start:start + self.room_size]
            made = await self.request(members[0], {"type": "room_create",
                                                   "name": f"bench {start}",
                                                   "limit": max(self.room_size, 2)})
            assert made["type"] == "room", made
            room_id = made["room"]["id"]
            for c in members[1:]:
                for _ in range(200):
                    reply = await self.request(c, {"type": "room_join", "room": room_id})
                    if reply["type"] == "room":
                        break
                    await asyncio.sleep(0.1)  # the room is on its way to this box
                else:
                    raise RuntimeError(f"could not join {room_id}: {reply}")
            self.rooms.append((room_id, members))

    async def phase(self, rate: float, seconds: float) -> dict[str, Any]:
        for c in self.clients:
            c.got.clear()
            c.latencies.clear()
        self.sent_by.clear()
        count = int(rate * seconds)
        start = time.monotonic_ns()
        expected = 0
        sent: list[tuple[str, str]] = []
        for k in range(count):
            room_id, members = self.rooms[k % len(self.rooms)]
            sender = members[(k // len(self.rooms)) % len(members)]
            due = start + int(k / rate * 1e9)
            delay = (due - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            msg_id = f"b{k:07d}{uuid.uuid4().hex[:8]}"
            self.sent_by[msg_id] = sender
            await sender.ws.send(json.dumps({"type": "send", "id": msg_id, "room": room_id,
                                             "text": f"B|{due}|{msg_id}|"}))
            sent.append((msg_id, room_id))
            expected += len(members) - 1
        await asyncio.sleep(3.0)  # deliveries still on their way
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self._delivered() < expected:
            await asyncio.sleep(0.2)
        same = sorted(ms for c in self.clients for ms, s in c.latencies if s)
        cross = sorted(ms for c in self.clients for ms, s in c.latencies if not s)
        delivered = self._delivered()
        duplicates = sum(n - 1 for c in self.clients for n in c.got.values() if n > 1)
        return {"rate": rate, "sent": count, "expected": expected, "delivered": delivered,
                "lost": expected - delivered, "duplicates": duplicates,
                "same_p50": pct(same, 50), "same_p99": pct(same, 99),
                "cross_p50": pct(cross, 50), "cross_p99": pct(cross, 99)}

    def _delivered(self) -> int:
        return sum(1 for c in self.clients for n in c.got.values() if n >= 1)

    async def close(self) -> None:
        await asyncio.gather(*(c.ws.close() for c in self.clients if c.ws is not None),
                             return_exceptions=True)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p / 100))]


# -- the run ---------------------------------------------------------------------------


async def fanout(boxes: list[Box], clients: int, room: int, rates: list[float],
                 seconds: float) -> tuple[list[dict[str, Any]], dict[str, int]]:
    crowd = Crowd([b.ws_url for b in boxes], clients, room)
    await crowd.connect()
    await crowd.make_rooms()
    if boxes[0].site:
        await asyncio.get_running_loop().run_in_executor(None, quiet_site, boxes)
    memory = {}
    for box in boxes:
        assert box.ahoy is not None
        memory[f"box{box.index} service"] = rss_kb(box.ahoy.pid)
        if box.nats is not None:
            memory[f"box{box.index} nats-server"] = rss_kb(box.nats.pid)
    results = [await crowd.phase(rate, seconds) for rate in rates]
    await crowd.close()
    return results, memory


async def catchup(boxes: list[Box], messages: int, senders: int) -> dict[str, Any]:
    crowd = Crowd([boxes[0].ws_url], senders, senders)
    await crowd.connect()
    made = await crowd.request(crowd.clients[0], {"type": "room_create", "name": "catch-up",
                                                  "limit": 200})
    room_id = made["room"]["id"]
    for c in crowd.clients[1:]:
        await crowd.request(c, {"type": "room_join", "room": room_id})
    await asyncio.get_running_loop().run_in_executor(None, quiet_site, boxes)
    for box in boxes:
        box.stop_nats()  # the site splits: every box alone
    per = messages // senders

    async def burst(c: Client) -> None:
        for k in range(per):
            # At most 15 a second per phone: under the box's 20 frames/s limit.
            due = time.monotonic() + 1 / 15
            reply = await crowd.request(c, {"type": "send", "id": f"k{c.index:04d}x{k:06d}",
                                            "room": room_id, "text": f"catch-up {k}"}, 60)
            assert reply["type"] == "ack", reply
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    started = time.monotonic()
    await asyncio.gather(*(burst(c) for c in crowd.clients))
    sent_s = time.monotonic() - started
    await crowd.close()
    target = boxes[0].health()["messages_stored"]
    for box in boxes:
        box.start_nats()  # the link returns
    healed = time.monotonic()

    def everywhere() -> bool:
        return all(b.health()["messages_stored"] >= target for b in boxes)

    await asyncio.get_running_loop().run_in_executor(None, wait_until, everywhere, 600,
                                                     "the catch-up")
    caught = time.monotonic() - healed
    await asyncio.get_running_loop().run_in_executor(None, quiet_site, boxes)
    settled = time.monotonic() - healed
    return {"messages": per * senders, "send_s": round(sent_s, 1),
            "every_box_has_all_s": round(caught, 1), "settled_s": round(settled, 1)}


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line, sep] + ["| " + " | ".join(c.ljust(w) for c, w in
                                                      zip(r, widths, strict=True)) + " |"
                                    for r in cells])


def f1(v: float) -> str:
    return "-" if v != v else f"{v:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.site", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boxes", type=int, default=3)
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--room", type=int, default=50)
    parser.add_argument("--rates", default="20,200")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--catchup", type=int, default=10000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--disk", action="store_true",
                        help="keep the boxes' data on disk (default: /dev/shm, so that other "
                             "work's disk traffic does not decide the figures)")
    args = parser.parse_args(argv)
    if args.quick:
        args.boxes, args.clients, args.room, args.seconds, args.catchup = 2, 60, 20, 4.0, 1000
    rates = [float(r) for r in args.rates.split(",")]
    random.seed(1)
    shm = Path("/dev/shm")
    base = None if args.disk or not shm.is_dir() else str(shm)
    root = Path(tempfile.mkdtemp(prefix="ahoy-bench-site-", dir=base))
    started: list[Box] = []
    out: dict[str, Any] = {}
    try:
        boxes = [Box(root / f"box{i}", True, i) for i in range(args.boxes)]
        for box in boxes:
            box.peers = [b for b in boxes if b is not box]
            box.prepare()
        for box in boxes:
            box.start()
            started.append(box)
        quiet_site(boxes)
        site_results, memory = asyncio.run(fanout(boxes, args.clients, args.room, rates,
                                                  args.seconds))
        out["site"], out["memory"] = site_results, memory
        alone = Box(root / "alone", False, 0)
        alone.prepare()
        alone.start()
        started.append(alone)
        alone_results, alone_memory = asyncio.run(fanout([alone], args.clients, args.room,
                                                         rates, args.seconds))
        out["alone"], out["alone_memory"] = alone_results, alone_memory
        alone.stop()
        report_fanout(args, out)
        try:
            out["catchup"] = asyncio.run(catchup(boxes, args.catchup, min(100, args.catchup)))
        except (RuntimeError, OSError) as exc:
            out["catchup"] = {"failed": f"{type(exc).__name__}: {exc}"}
    finally:
        for box in started:
            box.stop()
        shutil.rmtree(root, ignore_errors=True)
    report_catchup(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


def report_fanout(args: argparse.Namespace, out: dict[str, Any]) -> None:
    print(f"### Site fan-out: {args.boxes} boxes, {args.clients} clients (client i on box "
          f"i mod {args.boxes}), rooms of {args.room}, {args.seconds:g} s per rate (ms)\n")
    rows = []
    for kind, results in (("site", out["site"]), ("one box", out["alone"])):
        for r in results:
            rows.append([kind, f"{r['rate']:g}", r["sent"], r["expected"], r["lost"],
                         r["duplicates"], f1(r["same_p50"]), f1(r["same_p99"]),
                         f1(r["cross_p50"]), f1(r["cross_p99"])])
    print(table(["run", "msg/s", "sent", "deliveries", "lost", "dup", "same-box p50",
                 "same-box p99", "cross-box p50", "cross-box p99"], rows))
    print("\n### Memory with the clients connected (RSS, MB)\n")
    mem_rows = [[k, f"{v / 1024:.1f}"] for k, v in {**out["memory"],
                **{f"one box alone: {k}": v for k, v in out["alone_memory"].items()}}.items()]
    print(table(["process", "RSS MB"], mem_rows), flush=True)


def report_catchup(out: dict[str, Any]) -> None:
    c = out.get("catchup") or {"failed": "not run"}
    if "failed" in c:
        print(f"\n### Catch-up after a split\n\nfailed: {c['failed']}")
        return
    print(f"\n### Catch-up after a split\n\n{c['messages']} messages sent on box 0 while every "
          f"box was alone ({c['send_s']} s); after the servers came back every box had all "
          f"of them in {c['every_box_has_all_s']} s, and the site was quiet (nothing to "
          f"publish or read) after {c['settled_s']} s.")


if __name__ == "__main__":
    sys.exit(main())
