"""The captive portal on a real network: a box and two phones in network namespaces.

The box namespace holds a bridge `hot0` (standing in for the access point),
the real dnsmasq with the config that `provisioning` renders for it, and the
Ahoy service started with `python -m appliance serve`. Two phones, each in its
own namespace over a veth pair, take a DHCP lease, resolve names with the box's
DNS and fetch the OS probe URLs: one phone taps "Continue" through the real
form, the other never does, so every probe is seen both ways at once.
Needs root, `ip` (iproute2) and dnsmasq.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from provisioning_programs import sh, stop_all

from provisioning import render
from provisioning.config import BoxConfig, parse_config

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]
PHONE = Path(__file__).with_name("phone.py")
DNS_CLIENT = REPO / "tests" / "provisioning" / "phone_client.py"
# Not the default network, so the test shows the addresses come from the config.
CONFIG = (
    "box_name = portal-box\n"
    "wifi_name = Portal Deck\n"
    "interface = hot0\n"
    "network = 10.77.0.0/24\n"
    "dhcp_range = 10.77.0.100 - 10.77.0.150\n"
)
BOX = "10.77.0.1"
PORTAL = f"http://{BOX}/portal"

PROBES = [
    pytest.param("http://connectivitycheck.gstatic.com/generate_204", 204, "", id="android"),
    pytest.param("http://clients3.google.com/generate_204", 204, "", id="android-clients3"),
    pytest.param("http://www.google.com/gen_204", 204, "", id="android-gen204"),
    pytest.param("http://captive.apple.com/hotspot-detect.html", 200,
                 "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
                 id="apple"),
    pytest.param("http://captive.apple.com/library/test/success.html", 200,
                 "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
                 id="apple-library"),
    pytest.param("http://www.msftconnecttest.com/connecttest.txt", 200,
                 "Microsoft Connect Test", id="windows"),
    pytest.param("http://www.msftncsi.com/ncsi.txt", 200, "Microsoft NCSI", id="windows-ncsi"),
    pytest.param("http://detectportal.firefox.com/canonical.html", 200,
                 '<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>',
                 id="firefox"),
    pytest.param("http://detectportal.firefox.com/success.txt", 200, "success\n",
                 id="firefox-success"),
    pytest.param("http://nmcheck.gnome.org/check_network_status.txt", 200,
                 "NetworkManager is online\n", id="networkmanager"),
    pytest.param("http://connectivity-check.ubuntu.com./", 204, "", id="ubuntu"),
]


def _run(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)



def _program(name: str, package: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/sbin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip(f"{name} is not installed (apt-get install {package})")


@dataclass
class Phone:
    namespace: str
    lease: dict[str, Any] = field(default_factory=dict)

    def run(self, script: Path, *args: str) -> dict[str, Any]:
        result = _run(["ip", "netns", "exec", self.namespace, sys.executable, str(script), *args])
        assert result.returncode == 0, result.stderr
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer

    def fetch(self, url: str, method: str = "GET", **options: Any) -> dict[str, Any]:
        answer = self.run(PHONE, "fetch", self.lease["options"]["6"], method, url,
                          json.dumps(options))
        assert "error" not in answer, answer
        return answer

    def resolve(self, name: str) -> dict[str, Any]:
        return self.run(DNS_CLIENT, "dns", self.lease["options"]["6"], name)


@dataclass
class Hotspot:
    config: BoxConfig
    folder: Path
    waiting: Phone  # never taps Continue
    joining: Phone  # taps Continue (see the `joined` fixture)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _start(spot: Hotspot, namespace: str, name: str, *argv: str) -> None:
    log = open(spot.folder / f"{name}.log", "wb")
    spot.processes.append(subprocess.Popen(
        ["ip", "netns", "exec", namespace, *argv], cwd=REPO, stdout=log,
        stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
    ))


def _wait_for_service(spot: Hotspot, namespace: str) -> None:
    wait = (
        "import time, urllib.request\n"
        "deadline = time.monotonic() + 30\n"
        "while True:\n"
        "    try:\n"
        f"        urllib.request.urlopen('http://{BOX}/healthz', timeout=1); break\n"
        "    except OSError:\n"
        "        if time.monotonic() > deadline: raise\n"
        "        time.sleep(0.1)\n"
    )
    result = _run(["ip", "netns", "exec", namespace, sys.executable, "-c", wait], timeout=40)
    if result.returncode != 0:
        log = (spot.folder / "ahoy.log").read_text(errors="replace")
        raise RuntimeError(f"the Ahoy service did not start:\n{log[-3000:]}")


def _take_leases(phones: list[Phone]) -> None:
    """DHCP for all phones at once: dnsmasq pings each new address for up to 3 s first."""
    asking = [subprocess.Popen(["ip", "netns", "exec", phone.namespace, sys.executable,
                                str(PHONE), "lease", "ph0"], stdout=subprocess.PIPE, text=True)
              for phone in phones]
    for phone, process in zip(phones, asking, strict=True):
        out, _ = process.communicate(timeout=30)
        phone.lease = json.loads(out)
        assert "error" not in phone.lease, phone.lease
        options = phone.lease["options"]
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{options['1']}").prefixlen
        sh("ip", "-n", phone.namespace, "addr", "add", f"{phone.lease['yiaddr']}/{prefix}",
           "dev", "ph0")
        sh("ip", "-n", phone.namespace, "route", "add", "default", "via", options["3"])


@pytest.fixture(scope="module")
def hotspot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hotspot]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("ip is not installed (apt-get install iproute2)")
    dnsmasq = _program("dnsmasq", "dnsmasq")
    tag = os.getpid()
    box = f"ahoy-portal-box-{tag}"
    phones = [f"ahoy-portal-phone{n}-{tag}" for n in (1, 2)]
    created = _run(["ip", "netns", "add", box])
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    namespaces = [box]
    folder = tmp_path_factory.mktemp("portal-netns")
    (folder / "ahoy.txt").write_text(CONFIG)
    config = parse_config(CONFIG)
    spot = Hotspot(config, folder, Phone(phones[0]), Phone(phones[1]))
    try:
        sh("ip", "-n", box, "link", "add", "hot0", "type", "bridge")
        for n, phone in enumerate(phones, 1):
            sh("ip", "netns", "add", phone)
            namespaces.append(phone)
            sh("ip", "-n", box, "link", "add", f"port{n}", "type", "veth", "peer", "name",
               "ph0", "netns", phone)
            sh("ip", "-n", box, "link", "set", f"port{n}", "master", "hot0", "up")
            sh("ip", "-n", phone, "link", "set", "lo", "up")
            sh("ip", "-n", phone, "link", "set", "ph0", "up")
        sh("ip", "-n", box, "link", "set", "lo", "up")
        sh("ip", "-n", box, "link", "set", "hot0", "up")
        sh("ip", "-n", box, "addr", "add",
           f"{config.box_address}/{config.network.prefixlen}", "dev", config.interface)

        conf = folder / render.DNSMASQ
        conf.write_text(render.render_dnsmasq(config, lease_file=folder / "dnsmasq.leases"))
        _start(spot, box, "dnsmasq", dnsmasq, "--keep-in-foreground", "--user=root",
               "--log-facility=-", f"--conf-file={conf}",
               f"--pid-file={folder / 'dnsmasq.pid'}")
        _start(spot, box, "ahoy", sys.executable, "-m", "appliance", "serve", "--dev",
               "--host", BOX, "--port", "80", "--https-port", "443",
               "--data-dir", str(folder / "data"), "--config", str(folder / "ahoy.txt"))
        _wait_for_service(spot, box)
        _take_leases([spot.waiting, spot.joining])
        yield spot
    finally:
        stop_all(spot.processes, namespaces)


@pytest.fixture(scope="module")
def joined(hotspot: Hotspot) -> Phone:
    """The joining phone, after it opened the portal and tapped Continue."""
    phone = hotspot.joining
    probe = phone.fetch("http://connectivitycheck.gstatic.com/generate_204")
    assert probe["status"] == 302 and probe["headers"]["location"] == PORTAL
    page = phone.fetch(probe["headers"]["location"])
    assert page["status"] == 200
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', page["body"])
    assert nonce, page["body"]
    accepted = phone.fetch(f"http://{BOX}/portal/continue", "POST",
                           headers={"Origin": f"http://{BOX}"},
                           form={"nonce": nonce.group(1)})
    assert accepted["status"] == 303, accepted
    assert accepted["headers"]["location"] == "/portal/connected"
    return phone


def test_phone_gets_a_lease_with_the_captive_portal_api_in_option_114(hotspot: Hotspot) -> None:
    for phone in (hotspot.waiting, hotspot.joining):
        options = phone.lease["options"]
        assert options["114"] == render.captive_portal_api_url(hotspot.config)
        assert options["114"] == f"https://{BOX}{render.CAPTIVE_PORTAL_API_PATH}"
        assert options["3"] == BOX and options["6"] == BOX
        assert ipaddress.IPv4Address(phone.lease["yiaddr"]) in hotspot.config.network
    assert hotspot.waiting.lease["yiaddr"] != hotspot.joining.lease["yiaddr"]
    leases = (hotspot.folder / "dnsmasq.leases").read_text()
    assert hotspot.waiting.lease["mac"] in leases and hotspot.joining.lease["mac"] in leases


@pytest.mark.parametrize("name", ["connectivitycheck.gstatic.com", "captive.apple.com",
                                  "www.msftconnecttest.com", "example.org", "ahoy.internal"])
def test_any_name_resolves_to_the_box(hotspot: Hotspot, name: str) -> None:
    assert hotspot.waiting.resolve(name).get("addresses") == [BOX]


@pytest.mark.parametrize(("url", "status", "body"), PROBES)
def test_probe_is_redirected_to_the_portal_before_continue(
    hotspot: Hotspot, joined: Phone, url: str, status: int, body: str
) -> None:
    answer = hotspot.waiting.fetch(url)
    assert answer["address"] == BOX
    assert answer["status"] == 302
    assert answer["headers"]["location"] == PORTAL


@pytest.mark.parametrize(("url", "status", "body"), PROBES)
def test_probe_gets_the_exact_success_answer_after_continue(
    joined: Phone, url: str, status: int, body: str
) -> None:
    answer = joined.fetch(url)
    assert (answer["status"], answer["body"]) == (status, body)


def test_a_foreign_site_leads_to_the_portal_before_and_to_the_app_after(
    hotspot: Hotspot, joined: Phone
) -> None:
    before = hotspot.waiting.fetch("http://example.org/news")
    assert before["status"] == 302 and before["headers"]["location"] == PORTAL
    after = joined.fetch("http://example.org/news")
    assert after["status"] == 302 and after["headers"]["location"] == f"http://{BOX}/"


def test_captive_portal_api_from_option_114_answers_per_phone(
    hotspot: Hotspot, joined: Phone
) -> None:
    api = hotspot.waiting.lease["options"]["114"]
    waiting = hotspot.waiting.fetch(api)
    assert waiting["headers"]["content-type"] == "application/captive+json"
    assert json.loads(waiting["body"]) == {"captive": True,
                                           "user-portal-url": f"https://{BOX}/portal"}
    done = json.loads(joined.fetch(api)["body"])
    assert done["captive"] is False and done["seconds-remaining"] > 0


def test_portal_page_and_app_load_on_the_phone(hotspot: Hotspot, joined: Phone) -> None:
    page = hotspot.waiting.fetch(PORTAL)
    assert page["status"] == 200 and "Welcome to Portal Deck" in page["body"]
    connected = joined.fetch(f"http://{BOX}/portal/connected",
                             headers={"User-Agent": "Mozilla/5.0 (Linux; Android 14)"})
    assert connected["status"] == 200
    assert f"intent://{BOX}/#Intent;scheme=http;end" in connected["body"]
    assert f"https://{BOX}" in connected["body"]
    for phone in (hotspot.waiting, joined):
        app = phone.fetch(f"http://{BOX}/")
        assert app["status"] == 200 and "<html" in app["body"].lower()
    secure = joined.fetch(f"https://{BOX}/")
    assert secure["status"] == 200


def test_dnsmasq_and_the_service_keep_running_through_it_all(hotspot: Hotspot) -> None:
    assert [p.poll() for p in hotspot.processes] == [None] * len(hotspot.processes)
