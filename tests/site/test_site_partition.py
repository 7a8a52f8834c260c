"""Two boxes in network namespaces on a bridge (their backbone), each with its
nats-server and Ahoy service on the standard port, phones on the bridge: a real
split of the backbone (an nftables drop between the boxes, then lifted), and
where each nats-server listens (the backbone address alone, out of a phone's
reach on the hotspot side)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ahoytest import REPO, WsClient
from provisioning_programs import sh
from sitetest import SECRET, mid, wait_for, whole_conversation

from provisioning import credentials, site
from provisioning.config import BoxConfig

pytestmark = [pytest.mark.netns]
TAG = os.getpid() % 10000
SUBNET = f"10.{77 + TAG % 50}.{TAG % 250}"  # a /24 per test run, beside other runs


@dataclass
class NsBox:
    index: int
    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return f"ahsite{TAG}-{self.index}"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{self.index + 1}"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def run_in(self, name: str, *argv: str) -> None:
        log = open(self.folder / f"{name}.log", "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1", GPIOZERO_PIN_FACTORY="mock")
        self.processes.append(subprocess.Popen(["ip", "netns", "exec", self.namespace, *argv],
                                               cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                               env=env))

    def start(self, peers: list[NsBox]) -> None:
        self.data.mkdir(parents=True)
        credentials.set_site_secret(self.data, SECRET)
        # What the backbone service writes once it has taken the box's address.
        (self.data / "site").mkdir(parents=True)
        (self.data / "site" / "backbone.json").write_text(
            json.dumps({"box": {"backbone": self.address}, "peers": []}))
        paths, _ = site.ensure_site_files(BoxConfig(site_name="mv-hope"), self.data, SECRET)
        self.run_in("nats", "nats-server", "-c", str(paths.nats_config))
        args = [sys.executable, "-m", "appliance", "serve", "--host", "0.0.0.0", "--no-mdns",
                "--config", str(self.folder / "none.txt"), "--data-dir", str(self.data),
                "--port", "8080", "--https-port", "8443", "--site-name", "mv-hope"]
        for peer in peers:
            args += ["--site-peer", f"{peer.address}:4222"]
        self.run_in("ahoy", *args)

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.namespace, *argv],
                              capture_output=True, text=True, timeout=60, check=False)

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{self.address}:8080/healthz", timeout=5) as r:
            data: dict[str, Any] = json.load(r)
            return data

    def site(self) -> dict[str, Any]:
        try:
            return dict(self.health().get("site") or {})
        except OSError:
            return {}

    def client(self, name: str) -> WsClient:
        c = WsClient(f"ws://{self.address}:8080/ws")
        assert c.hello(name)["type"] == "welcome"
        return c

    def cut_from(self, other: NsBox) -> None:
        """The backbone between the two boxes drops everything (phones still reach it)."""
        rules = (f"table inet split {{\n"
                 f"  chain in {{ type filter hook input priority -10; "
                 f"ip saddr {other.address} drop; }}\n"
                 f"  chain out {{ type filter hook output priority -10; "
                 f"ip daddr {other.address} drop; }}\n}}\n")
        subprocess.run(["ip", "netns", "exec", self.namespace, "nft", "-f", "-"], input=rules,
                       text=True, check=True, timeout=30)

    def heal(self) -> None:
        sh("ip", "netns", "exec", self.namespace, "nft", "delete", "table", "inet", "split")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def backbone(tmp_path: Path) -> Iterator[list[NsBox]]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    bridge = f"ahsb{TAG}"
    boxes = [NsBox(i, tmp_path / f"box{i}") for i in range(2)]
    try:
        sh("ip", "link", "add", bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{SUBNET}.254/24", "dev", bridge)
        sh("ip", "link", "set", bridge, "up")
        for box in boxes:
            box.folder.mkdir()
            outside, inside = f"ahsv{TAG}{box.index}", f"ahsp{TAG}{box.index}"
            sh("ip", "netns", "add", box.namespace)
            sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            sh("ip", "link", "set", outside, "master", bridge, "up")
            sh("ip", "link", "set", inside, "netns", box.namespace)
            sh("ip", "-n", box.namespace, "addr", "add", f"{box.address}/24", "dev", inside)
            sh("ip", "-n", box.namespace, "link", "set", inside, "up")
            sh("ip", "-n", box.namespace, "link", "set", "lo", "up")
        for box in boxes:
            box.start([b for b in boxes if b is not box])
        wait_for(lambda: all(b.site().get("linked") == 1 for b in boxes), timeout=60,
                 what="the backbone links")
        yield boxes
    finally:
        for box in boxes:
            box.stop()
            # The veth first: a namespace's devices go away after `netns del` returns.
            subprocess.run(["ip", "link", "del", f"ahsv{TAG}{box.index}"], capture_output=True)
            subprocess.run(["ip", "netns", "del", box.namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)



def test_a_cut_backbone_keeps_both_sides_chatting_and_the_merge_has_every_message_once(
    backbone: list[NsBox]
) -> None:
    a, b = backbone
    alice, bob = a.client("Alice"), b.client("Bob")
    made = alice.request("room_create", "room", name="Bridge")
    room = made["room"]["id"]
    wait_for(lambda: bob.request("room_join", "room", room=room)["type"] == "room",
             what="the room at B")
    conv = f"room:{room}"
    a.cut_from(b)
    ids = []
    for i in range(5):  # each side acknowledges its own phones' messages alone
        for who in (alice, bob):
            ack = who.request("send", "ack", id=mid(), room=room, text=f"cut {i}")
            assert ack["type"] == "ack", ack
            ids.append(ack["id"])
    # Nothing crossed the cut.
    assert {m["from"] for m in whole_conversation(alice, conv)} == {alice.user_id}
    assert {m["from"] for m in whole_conversation(bob, conv)} == {bob.user_id}
    a.heal()
    for client in (alice, bob):
        wait_for(lambda c=client: len(whole_conversation(c, conv)) >= 10, timeout=90,
                 what="the merge")
    on_a, on_b = whole_conversation(alice, conv), whole_conversation(bob, conv)
    assert sorted(m["id"] for m in on_a) == sorted(ids) == sorted(m["id"] for m in on_b)
    assert {m["id"]: m["at"] for m in on_a} == {m["id"]: m["at"] for m in on_b}
    assert [m["seq"] for m in on_b] == list(range(1, 11))


def _connects(namespace: str, address: str, port: int) -> bool:
    """Whether a TCP connection from inside `namespace` to address:port is accepted."""
    probe = ("import socket, sys\n"
             "try:\n"
             f"    socket.create_connection(({address!r}, {port}), timeout=5).close()\n"
             "except OSError:\n"
             "    sys.exit(1)\n")
    done = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", probe],
                          capture_output=True, timeout=60, check=False)
    return done.returncode == 0


def test_nats_server_listens_on_the_backbone_address_alone_out_of_a_phones_reach(
    backbone: list[NsBox]
) -> None:
    from provisioning import render
    from provisioning.config import parse_config

    a, b = backbone
    # The server's only socket is on the backbone address (not 0.0.0.0, not loopback),
    # and the service reaches its own server there: the boxes linked (fixture) and
    # the own link is up.
    lines = a.run("ss", "-Hltn", "sport = :4222").stdout.splitlines()
    assert [line.split()[3] for line in lines] == [f"{a.address}:4222"], lines
    assert a.site().get("own_server") == "connected", a.site()
    assert not _connects(a.namespace, "127.0.0.1", 4222)
    assert _connects(b.namespace, a.address, 4222)  # the other box, over the backbone
    # A phone on box A's hotspot side, with box A's rendered firewall loaded.
    hotspot, phone = f"ahsh{TAG}", f"ahsph{TAG}"
    config = parse_config(f"site_name = mv-hope\ninterface = {hotspot}\n")
    box_address, phone_address = config.box_address, config.hotspot_subnet.network_address + 20
    prefix = config.hotspot_subnet.prefixlen
    try:
        sh("ip", "netns", "add", phone)
        sh("ip", "-n", a.namespace, "link", "add", hotspot, "type", "veth", "peer", "name",
            "ph0", "netns", phone)
        sh("ip", "-n", a.namespace, "addr", "add", f"{box_address}/{prefix}", "dev", hotspot)
        sh("ip", "-n", phone, "addr", "add", f"{phone_address}/{prefix}", "dev", "ph0")
        for ns, iface in ((a.namespace, hotspot), (phone, "ph0"), (phone, "lo")):
            sh("ip", "-n", ns, "link", "set", iface, "up")
        sh("ip", "-n", phone, "route", "add", "default", "via", str(box_address))
        rules = a.folder / "a.nft"
        rules.write_text(render.render_nftables(config))
        sh("ip", "netns", "exec", a.namespace, "nft", "-f", str(rules))
        # The phone reaches box A's backbone address (at a port the firewall lets
        # phones reach, HTTPS's, with a listener there) ...
        listener = subprocess.Popen(
            ["ip", "netns", "exec", a.namespace, sys.executable, "-c",
             "import socket\n"
             f"s = socket.create_server(({a.address!r}, 443))\n"
             "while True:\n    s.accept()[0].close()\n"])
        try:
            wait_for(lambda: _connects(phone, a.address, 443), what="the phone at port 443")
        finally:
            listener.kill()
            listener.wait(10)
        # ... but not its nats-server: nothing listens on the hotspot address, and the
        # backbone address is closed to the site's phones.
        assert not _connects(phone, str(box_address), 4222)
        assert not _connects(phone, a.address, 4222)
        assert _connects(b.namespace, a.address, 4222)
    finally:
        subprocess.run(["ip", "netns", "del", phone], capture_output=True, timeout=30)
