"""A hotspot on the wrong interface is refused, and never takes that interface's addresses.

`interface = lo` or `eth0` used to be accepted, became the last good config,
and apply then replaced the interface's own addresses (in a namespace,
127.0.0.1 was replaced by 10.42.0.1). In a network namespace with a loopback
and a veth pair (no Wi-Fi there), both are refused in words and keep their
addresses. Needs root.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from provisioning_programs import need, run, stop_all

from provisioning import configstore, wireless
from provisioning.apply import CommandResult, HostSystem, apply_config
from provisioning.config import BoxConfig, ConfigError, parse_config

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parents[2]
WIRED, WIRED_ADDRESS = "wired0", "192.168.77.1/24"


@dataclass
class Namespace:
    name: str

    def addresses(self, interface: str) -> str:
        return run(["ip", "-n", self.name, "-4", "-o", "addr", "show", "dev", interface]).stdout


class NamespaceMachine(HostSystem):
    """The real pyroute2 steps inside the namespace; every command only recorded.

    Commands (systemctl, iw, nft) would reach the host's services, not the
    namespace's, so none is run.
    """

    def __init__(self, netns: str) -> None:
        super().__init__(netns=netns)
        self.commands: list[list[str]] = []

    def run(self, argv: Sequence[str]) -> CommandResult:
        self.commands.append(list(argv))
        return CommandResult(0, "")


@pytest.fixture(scope="module")
def ns() -> Iterator[Namespace]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    need("ip")
    name = f"ahoy-iface-{os.getpid()}"
    created = run(["ip", "netns", "add", name])
    if created.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {created.stderr.strip()}")
    try:
        for argv in (
            ["ip", "-n", name, "link", "set", "lo", "up"],
            ["ip", "-n", name, "link", "add", WIRED, "type", "veth", "peer", "name", "wired1"],
            ["ip", "-n", name, "addr", "add", WIRED_ADDRESS, "dev", WIRED],
            ["ip", "-n", name, "link", "set", WIRED, "up"],
        ):
            done = run(argv)
            assert done.returncode == 0, done.stderr
        yield Namespace(name)
    finally:
        stop_all([], [name])


def test_the_validator_refuses_the_loopback_by_name() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config("interface = lo\n")
    assert refused.value.messages == [
        "line 1: interface lo is the loopback interface, not Wi-Fi; the hotspot needs a "
        "Wi-Fi adapter: wlan0 is the Pi's own, wlan1 a USB one"
    ]


def test_nl80211_says_a_veth_and_the_loopback_are_not_wifi(ns: Namespace) -> None:
    assert wireless.access_point_problem(WIRED, netns=ns.name) == (
        f"interface {WIRED} is not a Wi-Fi interface (it is a veth link); the hotspot needs "
        "a Wi-Fi adapter: wlan0 is the Pi's own, wlan1 a USB one (`iw dev` lists them)"
    )
    assert "is the loopback interface" in str(wireless.access_point_problem("lo", netns=ns.name))
    # Not there (a USB adapter not plugged in yet): not refused, apply says it is missing.
    assert wireless.access_point_problem("wlan7", netns=ns.name) is None
    assert not wireless.is_wireless(WIRED, netns=ns.name)


@pytest.mark.parametrize("interface", ["lo", WIRED])
def test_apply_refuses_a_non_wifi_interface_and_its_addresses_survive(
    ns: Namespace, tmp_path: Path, interface: str
) -> None:
    before = ns.addresses(interface)
    machine = NamespaceMachine(ns.name)
    # Past the validator, as a config from before this check would be.
    report = apply_config(BoxConfig(interface=interface), tmp_path / "data",
                          root=tmp_path / "root", system=machine)
    assert len(report.problems) == 1
    assert f"interface {interface} is" in report.problems[0]
    assert "nothing was changed" in report.problems[0]
    assert machine.commands == []  # no hostapd, dnsmasq, firewall or radio step
    assert ns.addresses(interface) == before
    assert "10.42.0.1" not in ns.addresses(interface)
    assert "127.0.0.1/8" in ns.addresses("lo")


def test_the_box_address_never_replaces_a_wired_interfaces_own(ns: Namespace) -> None:
    machine = HostSystem(netns=ns.name)
    try:
        assert machine.ensure_address(WIRED, "10.43.0.1", 24)
        shown = ns.addresses(WIRED)
        assert "10.43.0.1/24" in shown and WIRED_ADDRESS in shown
    finally:
        run(["ip", "-n", ns.name, "addr", "del", "10.43.0.1/24", "dev", WIRED])


def test_a_config_naming_a_veth_keeps_the_last_good_config_and_says_why(
    ns: Namespace, tmp_path: Path
) -> None:
    boot, data = tmp_path / "ahoy.txt", tmp_path / "data"
    check = functools.partial(wireless.access_point_problem, netns=ns.name)
    boot.write_text("wifi_name = Good Boat\n")  # wlan0: not in the namespace, not judged
    assert configstore.load_config(boot, data, interface_problem=check).source == "file"
    boot.write_text(f"wifi_name = Good Boat\ninterface = {WIRED}\n")
    loaded = configstore.load_config(boot, data, interface_problem=check)
    assert loaded.source == "last-good"
    assert loaded.config.interface == "wlan0"
    assert loaded.errors == (
        f"ahoy.txt: line 2: interface {WIRED} is not a Wi-Fi interface (it is a veth link); "
        "the hotspot needs a Wi-Fi adapter: wlan0 is the Pi's own, wlan1 a USB one "
        "(`iw dev` lists them)",
    )
    assert configstore.read_status(data)["errors"] == list(loaded.errors)


@pytest.mark.parametrize("interface", ["lo", WIRED])
def test_the_apply_command_in_the_namespace_refuses_it_in_words(
    ns: Namespace, tmp_path: Path, interface: str
) -> None:
    boot = tmp_path / "ahoy.txt"
    boot.write_text(f"interface = {interface}\n")
    done = subprocess.run(
        ["ip", "netns", "exec", ns.name, sys.executable, "-m", "provisioning", "apply",
         "--files-only", "--config", str(boot), "--data-dir", str(tmp_path / "data"),
         "--root", str(tmp_path / "root"), "--service-user", "no-such-user-here"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"interface {interface} is" in done.stderr
    # The hotspot files are for the safe defaults, not for the wrong interface.
    assert (tmp_path / "root" / "etc" / "hostapd" / "wlan0.conf").exists()
    assert not (tmp_path / "root" / "etc" / "hostapd" / f"{interface}.conf").exists()
    assert "127.0.0.1/8" in ns.addresses("lo")
