"""Running the service: HTTP and HTTPS in one process, so presence is shared.

Development uses Werkzeug's threaded server. On the box the service runs on
gevent's WSGI server: every connection costs greenlets instead of OS threads
(flask-sock needs two per connection plus Ahoy's writer), measured in
docs/benchmarks.md. `wsgiserver.py` adds the connection limits and timeouts a
shared Wi-Fi needs; CPU-heavy work goes to gevent's thread pool.
"""

from __future__ import annotations

import logging
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask

from .admission import Admission, Limits, file_limit_connections
from .box import box_of
from .settings import Settings

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600


def ensure_tls(settings: Settings) -> tuple[str, str]:
    """The certificate and key to serve HTTPS with, made on first start if the box has none.

    Damaged files (say, emptied by a power cut) are made again, and a damaged
    uploaded certificate is passed over for the box's own: the service starts
    either way, and the log says what happened.
    """
    from provisioning.tls import ensure_certificates

    notes: list[str] = []
    paths = ensure_certificates(settings.tls_dir, settings.box_name, settings.dns_names,
                                settings.ip_addresses, notes=notes)
    for note in notes:
        log.warning("%s", note)
    custom_cert, custom_key = paths.custom_cert, paths.custom_key
    if custom_cert.exists() and custom_key.exists():
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(custom_cert, custom_key)
        except (ssl.SSLError, OSError) as exc:
            log.error("the uploaded certificate cannot be used (%s); serving the box's own "
                      "certificate instead: upload it again on the admin page", exc)
        else:
            return str(custom_cert), str(custom_key)
    return str(paths.server_cert), str(paths.server_key)


def housekeeping(app: Flask, stop: threading.Event) -> None:
    """Call timeouts every second; message retention every hour."""
    hub = box_of(app).hub
    next_prune = 0.0
    while not stop.wait(1.0):
        try:
            hub.tick()
            if time.monotonic() >= next_prune:
                removed = hub.prune()
                if removed:
                    log.info("retention removed %d old messages", removed)
                next_prune = time.monotonic() + PRUNE_EVERY_S
        except Exception:
            log.exception("housekeeping failed")


def hub_workers(app: Flask, stop: threading.Event) -> list[threading.Thread]:
    """The hub's background work, to start beside the web server: presence and
    room changes gathered into one `changes` frame per phone every 0.2 s, and
    group commit (the messages that arrive while one commit waits for the disk
    are committed together in the next)."""
    hub = box_of(app).hub
    # Before any connection, so nothing waits for a loop not yet running.
    hub.coalesce = True
    hub.group_commit = True
    return [threading.Thread(target=hub.changes_loop, args=(stop,), name="ahoy-changes",
                             daemon=True),
            threading.Thread(target=hub.commit_loop, args=(stop,), name="ahoy-commits",
                             daemon=True)]


def start_devices(app: Flask, settings: Settings) -> Any:
    """Lights, button, hotspot watcher and mDNS, started beside the web server
    (their imports take a while; phones should not wait for them)."""
    from .devices import Devices

    devices = Devices(
        box_of(app),
        hotspot_interface=settings.hotspot_interface,
        led_pins=settings.led_pins,
        button_pin=settings.button_pin,
        announce=settings.announce_mdns,
        site=settings.in_site,
        follow_addresses=settings.lan_mode,
        uplink_interface=settings.uplink_interface,
    )
    threading.Thread(target=devices.start, name="ahoy-devices", daemon=True).start()
    return devices


def urls(settings: Settings) -> tuple[str, str]:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.http_port}/", f"https://{host}:{settings.https_port}/"


def serve_dev(app: Flask, settings: Settings, ready: Any = None) -> None:
    from werkzeug.serving import make_server

    cert, key = ensure_tls(settings)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    servers = [
        make_server(settings.host, settings.http_port, app, threaded=True),
        make_server(settings.host, settings.https_port, app, threaded=True, ssl_context=context),
    ]
    stop = threading.Event()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    threads.append(threading.Thread(target=housekeeping, args=(app, stop), daemon=True))
    threads += hub_workers(app, stop)
    for t in threads:
        t.start()
    devices = start_devices(app, settings)
    http_url, https_url = urls(settings)
    print(f"Ahoy is running (development mode, data in {settings.data_dir})", flush=True)
    print(f"  chat:           {http_url}", flush=True)
    print(f"  chat and calls: {https_url}  (self-signed: accept the warning once)", flush=True)
    if ready is not None:
        ready()

    def shutdown(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    stop.wait()
    devices.close()
    for s in servers:
        s.shutdown()
    box_of(app).hub.store.close()
    print("Ahoy stopped.", flush=True)


def listener(host: str, port: int) -> socket.socket:
    """A listening socket whose connections send small frames at once.

    Signaling is many small frames in a row; with Nagle's algorithm each one
    after the first waits for the peer's delayed ACK (about 40 ms).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accept()
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def in_thread_pool(pool: Any) -> Callable[[Callable[[], Any]], Any]:
    """`Box.run_blocking` on gevent's thread pool: the work's result, or its
    exception raised here (raised in the pool, gevent would also print it)."""

    def run(work: Callable[[], Any]) -> Any:
        def attempt() -> tuple[bool, Any]:
            try:
                return True, work()
            except Exception as e:
                return False, e

        ok, outcome = pool.apply(attempt)
        if not ok:
            raise outcome
        return outcome

    return run


def raise_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; returns it.

    Each WebSocket costs two descriptors. The unit sets LimitNOFILE; outside
    systemd the soft limit is often 1024 while the hard one is far higher.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 65536)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError) as e:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, e)
    return soft


def admission_for(settings: Settings, file_limit: int) -> Admission:
    """The connection limits from the settings, the total kept within the file limit."""
    fits = file_limit_connections(file_limit)
    if fits < settings.max_connections:
        log.warning("%d open files allow %d connections, not %d", file_limit, fits,
                    settings.max_connections)
    return Admission(Limits(
        connections=min(settings.max_connections, fits),
        connections_per_client=settings.max_connections_per_client,
        unfinished_per_client=settings.max_unfinished_per_client,
        header_timeout_s=settings.header_timeout_s,
    ))


def serve_production(app: Flask, settings: Settings) -> None:
    """gevent WSGI servers; the caller has monkey-patched the standard library."""
    import gevent

    from .wsgiserver import AhoyWSGIServer, GreenThread

    cert, key = ensure_tls(settings)
    # Blocking or CPU-heavy work (a message's fsync, password hashing, decoding
    # pictures) runs in real threads, so the loop keeps serving everyone else.
    box = box_of(app)
    box.run_blocking = in_thread_pool(gevent.get_hub().threadpool)
    box.hub.store.run_blocking = box.run_blocking
    app.config["SOCK_SERVER_OPTIONS"]["thread_class"] = GreenThread
    admission = admission_for(settings, raise_file_limit())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    http = AhoyWSGIServer(listener(settings.host, settings.http_port), app, admission, log=None)
    https = AhoyWSGIServer(listener(settings.host, settings.https_port), app, admission,
                           log=None, ssl_context=context, do_handshake_on_connect=False)
    http.start()
    https.start()
    stop = threading.Event()
    threading.Thread(target=housekeeping, args=(app, stop), daemon=True).start()
    for worker in hub_workers(app, stop):
        worker.start()
    devices = start_devices(app, settings)
    http_url, https_url = urls(settings)
    log.info("Ahoy is serving %s and %s (at most %d connections, %d per device)", http_url,
             https_url, admission.limits.connections, admission.limits.connections_per_client)
    print(f"Ahoy is serving {http_url} and {https_url}", flush=True)
    done = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, done.set)
    gevent.signal_handler(signal.SIGINT, done.set)
    done.wait()
    stop.set()
    devices.close()
    http.stop(timeout=2)
    https.stop(timeout=2)
    box.hub.store.close()
