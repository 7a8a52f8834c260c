"""Retention keeps what docs/config.md promises, and an append is one transaction.

docs/config.md: `retention_days = 0` keeps messages forever and
`retention_messages = 0` means no limit. The store prunes about a second after
every start, so these tests restart the real service and count what is left.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from ahoytest import WsClient

from appliance.store import Store


def write_config(path: Path, **keys: Any) -> Path:
    path.write_text("".join(f"{k} = {v}\n" for k, v in keys.items()))
    return path


def send_five(server: Any) -> tuple[str, str]:
    client = WsClient(server.ws_url)
    client.hello("Keeper")
    room = client.request("room_create", "room", name="Logbook")["room"]["id"]
    for i in range(5):
        client.request("send", "ack", id=f"m-keep{i:03}", room=room, text=f"entry {i}")
    assert client.token is not None
    token = client.token
    client.close()
    return token, room


def restart(server: Any) -> None:
    server.stop()
    server.start()


def count(server: Any, token: str, room: str) -> int:
    client = WsClient(server.ws_url)
    client.hello(token=token)
    history = client.request("sync", "history", conv=f"room:{room}", after=0, limit=100)
    client.close()
    return len(history["messages"])


def test_zero_retention_keeps_every_message_across_a_restart(start_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path / "ahoy.txt", retention_days=0, retention_messages=0)
    server = start_server(tmp_path / "data", extra_args=("--config", str(config)))
    token, room = send_five(server)
    restart(server)
    # A quiet window for "nothing deleted": the first prune runs about a second
    # after the start; a slow machine can only make this miss a wrong deletion.
    time.sleep(2.5)
    assert count(server, token, room) == 5


def test_message_limit_keeps_the_newest_per_chat_across_a_restart(start_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path / "ahoy.txt", retention_days=0, retention_messages=3)
    server = start_server(tmp_path / "data", extra_args=("--config", str(config)))
    token, room = send_five(server)
    restart(server)
    deadline = time.monotonic() + 30  # the first prune runs about a second after the start
    while (kept := count(server, token, room)) > 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert kept == 3


def test_store_prune_with_no_limits_deletes_nothing() -> None:
    store = Store(":memory:")
    for i in range(4):
        store.append("room:r", f"m-{i}", "u1", "Ann", "hi", now=1000 + i)
    assert store.prune(None, None) == 0
    assert store.prune(older_than=1002, keep_per_conv=None) == 2
    assert store.prune(None, keep_per_conv=1) == 1
    assert [m.seq for m in store.after("room:r", 0, 10)[0]] == [4]


class FailingInserts:
    """A connection proxy whose message INSERT fails, as a full disk would."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("INSERT INTO messages"):
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def __enter__(self) -> Any:
        return self._db.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._db.__exit__(*exc)


def test_a_failed_message_insert_consumes_no_sequence_number(tmp_path: Path) -> None:
    store = Store(tmp_path / "ahoy.db")
    store.append("room:r", "m-1", "u1", "Ann", "first", now=1)
    real = store.db
    store.db = FailingInserts(real)  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError):
        store.append("room:r", "m-2", "u1", "Ann", "lost to a full disk", now=2)
    store.db = real
    assert store.last_seq("room:r") == 1
    assert store.append("room:r", "m-2", "u1", "Ann", "second try", now=3)[0].seq == 2
    store.close()
    # The same holds for what is on disk, read by a fresh connection.
    again = Store(tmp_path / "ahoy.db")
    assert [m.seq for m in again.after("room:r", 0, 10)[0]] == [1, 2]
    assert again.last_seq("room:r") == 2
