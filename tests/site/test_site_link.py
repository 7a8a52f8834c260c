"""The site link on the service's side, without NATS: what it does with what the
bridge hands it (a real hub and SQLite store; the bridge is a recorder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sitetest import SECRET

from appliance.hub import Hub
from appliance.site.link import SiteLink
from appliance.site.records import MessageRecord, encode
from appliance.store import Store
from provisioning import credentials

A = "aaaaaaaa"


class RecordingBridge:
    def __init__(self) -> None:
        self.resets = 0
        self.pokes = 0

    def poke_outbox(self) -> None:
        self.pokes += 1

    def reset_links(self) -> None:
        self.resets += 1

    def send_live(self, *args: Any) -> None:
        pass


def record(n: int) -> tuple[str, str, int, bytes]:
    message = MessageRecord(A, n, "room:r_1", f"m-from-a-{n:04d}", "u_ana", "Ana", f"text {n}",
                            1000 + n)
    return ("record", "mv-hope-aaaaaaaa", n, encode(message))


def test_records_that_fail_to_apply_are_read_again_from_the_stored_position(
    tmp_path: Path
) -> None:
    credentials.set_site_secret(tmp_path, SECRET)
    hub = Hub(Store(tmp_path / "ahoy.db"))
    link = SiteLink(hub, tmp_path, "mv-hope", (), 4222, SECRET)
    bridge = RecordingBridge()
    link.bridge = bridge  # type: ignore[assignment]
    real_apply = link.replica.apply
    failures = [RuntimeError("disk full")]

    def apply_once_failing(batch: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_apply(batch)

    link.replica.apply = apply_once_failing  # type: ignore[method-assign]
    try:
        link._handle([record(1), record(2)])
        assert bridge.resets == 1 and hub.store.message_count() == 0
        link._handle([record(3)])  # still the old reading: it would skip 1 and 2
        assert hub.store.message_count() == 0
        assert link.replica.stream_position("mv-hope-aaaaaaaa") == 0
        link._handle([("resume", "mv-hope-aaaaaaaa"), record(1), record(2), record(3)])
        assert hub.store.message_count() == 3
        assert link.replica.stream_position("mv-hope-aaaaaaaa") == 3
    finally:
        link.inbox.close()
