"""The NATS side of a box in a site: one OS thread with its own asyncio loop.

The Ahoy service runs on gevent; nats-py is asyncio. The bridge keeps them
apart: everything NATS happens in this thread's loop, and it hands what
arrives to the service through a thread-safe `deliver` callback (the
service's inbox, see `channel.py`). The service calls in with `poke_outbox`
and `send_live`, which only schedule work on this loop.

What the loop does:

- this box's own server: the `SITE` stream (created if missing) that the
  outbox is published into, with `Nats-Msg-Id` for deduplication; a
  snapshot of who is online here every few seconds on `site.live.<box>`;
  `site.to.<box>` and `site.frame.<box>`, which other boxes publish on this
  server for phones on this box.
- every other box's server: its `SITE` stream read in order from where this
  box stopped (stored in SQLite with what it applied), its
  `site.live.<box>` events, and `site.to.<this box>` and
  `site.frame.<this box>` there too: a box publishes those both on the
  other box's server and on its own (the two links of a pair come up one
  after the other, so either may be missing for a moment), and the
  receiving box drops the second copy by its id. A link that drops is tried again every
  few seconds, from the stored position.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STREAM = "SITE"
SUBJECTS = "site.log.>"
RETRY_S = (0.5, 1.0, 2.0, 3.0)
SNAPSHOT_EVERY_S = 3.0
# A box whose snapshots stop for this long is taken as gone: its phones go offline here.
SILENT_AFTER_S = 10.0
# How many records from other boxes may wait for the service before reading pauses.
MAX_WAITING = 4000
OUTBOX_BATCH = 256
CONNECT_TIMEOUT_S = 10.0
# How often a box the admin removed is asked again whether it is back.
REMOVED_RETRY_S = 5.0
REMOVED_PROBLEM = ("the admin removed this box from the site; it is back: add it again to "
                   "share its chat")


@dataclass
class LinkState:
    """One other box as this one sees it (for the admin page and /healthz)."""

    url: str
    state: str = "connecting"  # connecting, connected, refused, unreachable, self, removed
    box: str | None = None
    server: str | None = None
    problem: str = ""
    since: float = field(default_factory=time.time)
    stream_last: int = 0  # their stream's last sequence, last we asked
    applied: int = 0  # how far this box has applied it

    @property
    def lag(self) -> int:
        return max(0, self.stream_last - self.applied)

    def to_wire(self) -> dict[str, Any]:
        return {"url": self.url, "state": self.state, "box": self.box, "server": self.server,
                "problem": self.problem, "since": int(self.since), "lag": self.lag}


@dataclass(frozen=True)
class BridgeConfig:
    box: str
    site_name: str
    own_url: str
    peer_urls: tuple[str, ...]
    db_path: Path
    password: str
    user: str
    tls: Callable[[], ssl.SSLContext]
    # Where this box's own server is now (read at each attempt: provisioning
    # moves it to the backbone address once the box has one); own_url if None.
    own_url_now: Callable[[], str] | None = None


class Bridge:
    def __init__(self, config: BridgeConfig, deliver: Callable[[tuple[Any, ...]], None],
                 waiting: Callable[[], int],
                 online_snapshot: Callable[[], list[list[str]]],
                 room_calls: Callable[[], dict[str, str]] = dict,
                 busy: Callable[[], list[str]] = list,
                 room_calls_started: Callable[[], dict[str, int]] = dict) -> None:
        self.config = config
        self.deliver = deliver  # thread-safe: hands an event to the service
        self.waiting = waiting  # how many events the service has not taken yet
        self.online_snapshot = online_snapshot  # thread-safe: [[user id, name], ...] here
        self.room_calls = room_calls  # thread-safe: {room id: call id} held here
        self.busy = busy  # thread-safe: [user id] in calls held here
        self.room_calls_started = room_calls_started  # thread-safe: {room id: started, ms}
        self.links: dict[str, LinkState] = {url: LinkState(url) for url in config.peer_urls}
        # Boxes the admin removed from the site: not read, not shown while away,
        # refused (state "removed") when they come back, until the admin adds them again.
        self.removed: frozenset[str] = frozenset()
        self.own = LinkState(config.own_url)
        self.published = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox_due: asyncio.Event | None = None
        self._peer_conns: dict[str, Any] = {}  # box -> connection to its server
        self._own_nc: Any = None
        self._sending: set[asyncio.Future[None]] = set()
        self._tasks: list[asyncio.Future[None]] = []
        self._stopping = False
        self._thread_done = _native_event()
        self._ready = _native_event()

    # -- called from the service (any thread) ----------------------------------------

    def start(self) -> None:
        start_new_thread = _native_start_new_thread()
        start_new_thread(self._run, ())
        self._ready.wait(10)

    def stop(self) -> None:
        self._stopping = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: None)
        self._thread_done.wait(10)

    def poke_outbox(self) -> None:
        loop, due = self._loop, self._outbox_due
        if loop is not None and due is not None:
            loop.call_soon_threadsafe(due.set)

    def send_live(self, box: str | None, subject: str, body: bytes) -> None:
        """Publish a live event on `box`'s server (None: this box's own)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._publish_live, box, subject, body)

    def add_peer(self, url: str) -> None:
        """Link to one more box (found on the backbone); nothing if already linked."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._add_peer, url)

    def _add_peer(self, url: str) -> None:
        if url in self.links or self._stopping:
            return
        link = LinkState(url)
        self.links[url] = link
        self._tasks.append(asyncio.ensure_future(self._peer_link(link)))

    def set_removed(self, boxes: frozenset[str]) -> None:
        """Stop reading these boxes (and refuse them when they come back); read the
        others again."""
        self.removed = frozenset(boxes)
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._drop_removed)

    def _drop_removed(self) -> None:
        for box, nc in list(self._peer_conns.items()):
            if box in self.removed:
                task = asyncio.ensure_future(nc.close())
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    def reset_links(self) -> None:
        """Drop every link to the other boxes; each is made again and read from
        the position stored with what this box applied."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._drop_peer_conns)

    def _drop_peer_conns(self) -> None:
        for nc in list(self._peer_conns.values()):
            task = asyncio.ensure_future(nc.close())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def status(self) -> dict[str, Any]:
        removed = self.removed
        # A removed box is off the list while it is away; back, it shows as "removed".
        return {"own": self.own.to_wire(), "published": self.published,
                "links": [link.to_wire() for link in list(self.links.values())
                          if link.box not in removed or link.state == "removed"],
                "removed": sorted(removed)}

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except Exception:
            log.exception("the site bridge stopped")
        finally:
            loop.close()
            self._thread_done.set()

    async def _main(self) -> None:
        self._outbox_due = asyncio.Event()
        self._ready.set()
        tasks = self._tasks
        tasks.append(asyncio.ensure_future(self._own_link()))
        tasks += [asyncio.ensure_future(self._peer_link(link))
                  for link in list(self.links.values())]
        while not self._stopping:
            await asyncio.sleep(1.0)
            self.deliver(("tick",))  # the service forgets boxes gone silent, finds new ones
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for nc in [self._own_nc, *self._peer_conns.values()]:
            if nc is not None:
                try:
                    await asyncio.wait_for(nc.close(), 2)
                except Exception:
                    pass

    async def _connect(self, url: str, lost: asyncio.Event) -> Any:
        import nats

        async def on_error(error: Exception) -> None:
            log.debug("site link %s: %s", url, error)

        async def on_closed() -> None:
            lost.set()

        # Bounded in time as a whole: a link to a box that just died may otherwise
        # wait for ever, and the box would show as "connecting" instead of "not reachable".
        return await asyncio.wait_for(nats.connect(
            url, tls=self.config.tls(), user=self.config.user, password=self.config.password,
            allow_reconnect=False, connect_timeout=3, ping_interval=5, max_outstanding_pings=3,
            error_cb=on_error, disconnected_cb=on_closed, closed_cb=on_closed,
            name=f"ahoy-{self.config.box}"), CONNECT_TIMEOUT_S)

    async def _retry(self, attempt: int) -> None:
        await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])

    # -- this box's own server -----------------------------------------------------------

    async def _own_link(self) -> None:
        attempt = 0
        while not self._stopping:
            lost = asyncio.Event()
            if self.config.own_url_now is not None:
                self.own.url = self.config.own_url_now()
            try:
                nc = await self._connect(self.own.url, lost)
            except Exception as exc:
                self.own.state, self.own.problem = "unreachable", _describe(exc)
                attempt += 1
                await self._retry(attempt)
                continue
            attempt = 0
            self._own_nc = nc
            try:
                js = nc.jetstream()
                await self._ensure_stream(js)
                await nc.subscribe(f"site.to.{self.config.box}", cb=self._on_live)
                await nc.subscribe(f"site.frame.{self.config.box}", cb=self._on_live)
                self.own.state, self.own.problem, self.own.since = "connected", "", time.time()
                await asyncio.gather(self._publish_outbox(js, lost), self._snapshots(nc, lost))
            except Exception as exc:
                log.warning("site: own server link failed: %s", _describe(exc))
                self.own.problem = _describe(exc)
            finally:
                self._own_nc = None
                self.own.state = "unreachable"
                try:
                    await nc.close()
                except Exception:
                    pass
            await self._retry(1)

    async def _ensure_stream(self, js: Any) -> None:
        from nats.js.api import DiscardPolicy, StorageType, StreamConfig

        from provisioning.site import DUPLICATE_WINDOW_S, MAX_PAYLOAD, STREAM_MAX_BYTES

        config = StreamConfig(name=STREAM, subjects=[SUBJECTS], storage=StorageType.FILE,
                              duplicate_window=DUPLICATE_WINDOW_S, max_bytes=STREAM_MAX_BYTES,
                              max_msg_size=MAX_PAYLOAD, discard=DiscardPolicy.OLD)
        try:
            await js.add_stream(config)
        except Exception:
            await js.update_stream(config)

    async def _publish_outbox(self, js: Any, lost: asyncio.Event) -> None:
        assert self._outbox_due is not None
        db = sqlite3.connect(str(self.config.db_path), timeout=10, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=10000")
        try:
            while not lost.is_set():
                rows = db.execute("SELECT id, subject, msg_id, body FROM site_outbox"
                                  " ORDER BY id LIMIT ?", (OUTBOX_BATCH,)).fetchall()
                if not rows:
                    self._outbox_due.clear()
                    try:
                        await asyncio.wait_for(self._outbox_due.wait(), 1.0)
                    except TimeoutError:
                        pass
                    continue
                for _, subject, msg_id, body in rows:
                    await js.publish(subject, bytes(body), timeout=5,
                                     headers={"Nats-Msg-Id": msg_id})
                    self.published += 1
                with db:
                    db.execute("DELETE FROM site_outbox WHERE id <= ?", (rows[-1][0],))
        finally:
            db.close()

    async def _snapshots(self, nc: Any, lost: asyncio.Event) -> None:
        from .records import encode_live

        while not lost.is_set():
            body = {"k": "online", "box": self.config.box, "full": True,
                    "users": self.online_snapshot(), "calls": self.room_calls(),
                    "started": self.room_calls_started(), "busy": self.busy()}
            await nc.publish(f"site.live.{self.config.box}", encode_live(body))
            try:
                await asyncio.wait_for(lost.wait(), SNAPSHOT_EVERY_S)
            except TimeoutError:
                pass

    def _publish_live(self, box: str | None, subject: str, body: bytes) -> None:
        if box is None:
            paths = [self._own_nc]
        elif box in self.removed:
            return
        else:
            # On that box's server, and on this box's own, where it listens for what
            # is meant for it too: while the links of a pair come up one after the
            # other, one of the two may not be there yet. It drops the second copy.
            paths = [self._peer_conns.get(box), self._own_nc]
        for nc in paths:
            if nc is None:
                continue  # out of reach: like a phone that just left the Wi-Fi

            async def publish(nc: Any = nc) -> None:
                try:
                    await nc.publish(subject, body)
                except Exception as exc:
                    log.debug("site: live event to %s lost: %s", box, exc)

            task = asyncio.ensure_future(publish())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _on_live(self, msg: Any) -> None:
        self.deliver(("live", bytes(msg.data)))

    # -- the other boxes -------------------------------------------------------------

    async def _peer_link(self, link: LinkState) -> None:
        attempt = 0
        while not self._stopping:
            lost = asyncio.Event()
            if attempt == 0 and link.state != "removed":
                link.state = "connecting"
            try:
                nc = await self._connect(link.url, lost)
            except Exception as exc:
                link.problem = _describe(exc)
                link.state = "refused" if _refused(exc) else "unreachable"
                attempt += 1
                await self._retry(attempt)
                continue
            attempt = 0
            server = str(nc._server_info.get("server_name", ""))
            box = server.rsplit("-", 1)[-1]
            if box == self.config.box:
                link.state, link.problem = "self", "this is this box's own address"
                await nc.close()
                return
            link.server, link.box = server, box
            if box in self.removed:
                link.state, link.problem = "removed", REMOVED_PROBLEM
                link.since = time.time()
                try:
                    await nc.close()
                except Exception:
                    pass
                await asyncio.sleep(REMOVED_RETRY_S)
                continue
            self._peer_conns[box] = nc
            try:
                await nc.subscribe(f"site.live.{box}", cb=self._on_live)
                # What a box with no link to this one yet publishes on its own server.
                await nc.subscribe(f"site.to.{self.config.box}", cb=self._on_live)
                await nc.subscribe(f"site.frame.{self.config.box}", cb=self._on_live)
                await self._read_stream(nc, link, lost)
            except Exception as exc:
                link.problem = _describe(exc)
                log.info("site: link to %s dropped: %s", link.url, link.problem)
            finally:
                if self._peer_conns.get(box) is nc:
                    del self._peer_conns[box]
                link.state, link.since = "unreachable", time.time()
                self.deliver(("gone", box))
                try:
                    await nc.close()
                except Exception:
                    pass
            await self._retry(0)

    async def _read_stream(self, nc: Any, link: LinkState, lost: asyncio.Event) -> None:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        js = nc.jetstream()
        assert link.server is not None
        server = link.server
        start = self._position(server)
        info = await js.stream_info(STREAM)
        if start > info.state.last_seq:
            # Their stream is younger than what this box applied (its JetStream
            # folder was replaced): read it again from the start; the store's
            # own checks skip what this box has.
            start = 0
        config = (ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                 opt_start_seq=start + 1)
                  if start else ConsumerConfig(deliver_policy=DeliverPolicy.ALL))

        async def on_record(msg: Any) -> None:
            while self.waiting() > MAX_WAITING and not lost.is_set():
                await asyncio.sleep(0.02)
            self.deliver(("record", server, int(msg.metadata.sequence.stream), bytes(msg.data)))

        self.deliver(("resume", server))  # what follows is read from the stored position
        sub = await js.subscribe(SUBJECTS, stream=STREAM, ordered_consumer=True, config=config,
                                 cb=on_record)
        link.state, link.problem, link.since = "connected", "", time.time()
        try:
            while not lost.is_set():
                info = await js.stream_info(STREAM)
                link.stream_last = info.state.last_seq
                link.applied = self._position(server)
                try:
                    await asyncio.wait_for(lost.wait(), 2.0)
                except TimeoutError:
                    pass
        finally:
            try:
                await sub.unsubscribe()
            except Exception:
                pass

    def _position(self, server: str) -> int:
        db = sqlite3.connect(str(self.config.db_path), timeout=10)
        try:
            row = db.execute("SELECT seq FROM site_positions WHERE server = ?",
                             (server,)).fetchone()
        except sqlite3.OperationalError:
            row = None
        finally:
            db.close()
        return int(row[0]) if row else 0


def _describe(exc: BaseException) -> str:
    if _refused(exc):
        return ("refused: the other box has another site secret or site name "
                "(its certificate is not from this site's CA, or ours is not from its)")
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_S:.0f} s"
    text = str(exc) or type(exc).__name__
    return text[:200]


def _refused(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return any(s in text for s in ("CERTIFICATE_VERIFY_FAILED", "Authorization Violation",
                                   "certificate", "SSLError", "TLSV1_ALERT"))


class _NativeEvent:
    """Set once, waited for from another OS thread: a real lock, even under gevent
    (whose patched Event is for greenlets of one thread)."""

    def __init__(self) -> None:
        allocate: Any = _native("allocate_lock")
        self._lock = allocate()
        self._lock.acquire()

    def set(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:
            pass  # already set

    def wait(self, timeout: float) -> bool:
        if self._lock.acquire(timeout=timeout):
            self._lock.release()
            return True
        return False


def _native_event() -> _NativeEvent:
    return _NativeEvent()


def _native(name: str) -> Any:
    """`_thread.<name>` as it was before gevent patched it."""
    try:
        from gevent import monkey

        if monkey.is_module_patched("_thread") or monkey.is_module_patched("threading"):
            return monkey.get_original("_thread", name)
    except ImportError:
        pass
    import _thread

    return getattr(_thread, name)


def _native_start_new_thread() -> Any:
    """An OS thread even when gevent has patched `threading` (the loop must not be a greenlet)."""
    return _native("start_new_thread")
