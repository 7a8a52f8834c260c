"""The apply step: files under a temporary root, machine changes through a recorder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from provisioning import apply, render
from provisioning.apply import ApplyReport, CommandResult, apply_config
from provisioning.config import BoxConfig, parse_config
from provisioning.datadir import DataDir

REPO = Path(__file__).resolve().parents[2]


class RecordingSystem:
    """A pretend machine: remembers what apply did and keeps the state it set."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.address: tuple[str, str, int] | None = None
        self.country = "00"
        self.power_save = "on"
        self.nft_loaded = False
        self.forward = "0"
        self.networkd_reloads = 0
        self.active: set[str] = set()
        self.interfaces = {"wlan0", "wlan1"}
        self.wired = {"eth0": "interface eth0 is not a Wi-Fi interface (it is wired)"}
        # What nl80211 would say against Enhanced Open; None: the radio can do it.
        self.owe_problem: str | None = "the Wi-Fi adapter of wlan0 runs one network at a time"
        self.bridge: str | None = None  # the bridge's port, when there is a bridge
        self.leases: dict[str, str] = {}  # what DHCP gave an interface (not ours to set)

    def run(self, argv: Sequence[str]) -> CommandResult:
        argv = list(argv)
        match argv:
            case ["iw", "reg", "get"]:
                return CommandResult(0, f"global\ncountry {self.country}: DFS-ETSI")
            case ["iw", "reg", "set", country]:
                self.country = country
            case ["iw", "dev", iface, "info"]:
                return CommandResult(0 if iface in self.interfaces else 237, "")
            case ["iw", "dev", _, "get", "power_save"]:
                return CommandResult(0, f"Power save: {self.power_save}")
            case ["iw", "dev", _, "set", "power_save", "off"]:
                self.power_save = "off"
            case ["nft", "list", "table", *_]:
                return CommandResult(0 if self.nft_loaded else 1, "")
            case ["nft", "-f", _]:
                self.nft_loaded = True
            case ["systemctl", "is-active", "--quiet", unit]:
                return CommandResult(0 if unit in self.active else 3, "")
            case ["systemctl", "start" | "restart", unit]:
                self.active.add(unit)
            case ["systemctl", "stop", unit]:
                self.active.discard(unit)
            case ["networkctl", "reload" | "reconfigure", *_]:
                self.networkd_reloads += 1
            case ["sysctl", "-n", "net.ipv4.ip_forward"]:
                return CommandResult(0, self.forward)
            case ["sysctl", "-q", "-w", setting]:
                self.forward = setting.split("=")[1]
            case _:
                raise AssertionError(f"unexpected command {argv}")
        self.commands.append(argv)
        return CommandResult(0, "")

    def access_point_problem(self, interface: str) -> str | None:
        return self.wired.get(interface)

    def address_of(self, interface: str) -> str | None:
        if self.address is not None and self.address[0] == interface:
            return self.address[1]
        return self.leases.get(interface)

    def enhanced_open_problem(self, interface: str) -> str | None:
        return self.owe_problem

    def ensure_bridge(self, bridge: str, port: str | None) -> bool:
        changed = self.bridge != port
        self.bridge = port
        if port is None:
            self.interfaces.discard(bridge)
            if self.address is not None and self.address[0] == bridge:
                self.address = None
        else:
            self.interfaces.add(bridge)
            if self.address is not None and self.address[0] == port:
                self.address = None  # the port keeps no address of its own
        return changed

    def ensure_address(self, interface: str, address: str, prefixlen: int) -> bool:
        if interface not in self.interfaces:
            raise LookupError(interface)
        wanted = (interface, address, prefixlen)
        changed = self.address != wanted
        self.address = wanted
        return changed


CONFIG = parse_config("wifi_passphrase = correct horse\ncountry = DE\n")


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_files_land_in_etc_with_safe_modes(tmp_path: Path) -> None:
    report = apply_config(CONFIG, tmp_path / "data", root=tmp_path / "root")
    etc = tmp_path / "root" / "etc"
    assert (etc / "hostapd" / "wlan0.conf").read_text() == render.render_hostapd(CONFIG)
    assert (etc / "dnsmasq.d" / "ahoy.conf").exists()
    assert (etc / "ahoy" / "nftables.nft").exists()
    assert (etc / "systemd" / "network" / "50-ahoy-hotspot.network").exists()
    turn = (etc / "turnserver.conf").read_text()
    assert (DataDir(tmp_path / "data").turn_secret.read_text().strip()) in turn
    assert (etc / "hostapd" / "wlan0.conf").stat().st_mode & 0o777 == 0o600
    assert (etc / "turnserver.conf").stat().st_mode & 0o777 == 0o640
    assert len(report.changed_files) == 5
    tls_dir = DataDir(tmp_path / "data").tls
    assert (tls_dir / "server.crt").exists() and (tls_dir / "ahoy-ca.crt").exists()


def test_applying_twice_writes_nothing_the_second_time(tmp_path: Path) -> None:
    apply_config(CONFIG, tmp_path / "data", root=tmp_path / "root")
    before = tree(tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    report = apply_config(CONFIG, tmp_path / "data", root=tmp_path / "root")
    assert not report.changed
    assert tree(tmp_path) == before
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_first_apply_sets_up_the_machine_and_the_second_does_nothing(tmp_path: Path) -> None:
    system = RecordingSystem()
    first = apply_config(CONFIG, tmp_path / "data", root=tmp_path / "root", system=system)
    assert first.problems == []
    assert system.address == ("wlan0", "10.42.0.1", 24)
    assert system.country == "DE" and system.power_save == "off" and system.nft_loaded
    assert system.active == {"dnsmasq", "coturn", "hostapd@wlan0"}
    assert ["systemctl", "restart", "hostapd@wlan0"] in system.commands
    system.commands.clear()
    second = apply_config(CONFIG, tmp_path / "data", root=tmp_path / "root", system=system)
    assert second == ApplyReport()
    assert system.commands == []


def test_enhanced_open_puts_the_address_on_a_bridge_and_a_password_takes_it_away(
    tmp_path: Path,
) -> None:
    system = RecordingSystem()
    system.owe_problem = None  # the radio can (mac80211, PMF, two access points)
    data, root = tmp_path / "data", tmp_path / "root"
    open_network = parse_config("country = DE\n")
    first = apply_config(open_network, data, root=root, system=system)
    assert first.problems == []
    assert system.bridge == "wlan0" and system.address == ("br-ahoy", "10.42.0.1", 24)
    hostapd = (root / "etc/hostapd/wlan0.conf").read_text()
    assert "wpa_key_mgmt=OWE" in hostapd and "bridge=br-ahoy" in hostapd
    assert "interface=br-ahoy" in (root / "etc/dnsmasq.d/ahoy.conf").read_text()
    assert "made the bridge br-ahoy for wlan0 and its Enhanced Open network" in first.actions
    system.commands.clear()
    assert apply_config(open_network, data, root=root, system=system) == ApplyReport()
    # A password: WPA2, no bridge, the address back on the Wi-Fi interface.
    wpa2 = apply_config(CONFIG, data, root=root, system=system)
    assert wpa2.problems == [] and "removed the bridge br-ahoy" in wpa2.actions
    assert system.bridge is None and system.address == ("wlan0", "10.42.0.1", 24)
    assert "OWE" not in (root / "etc/hostapd/wlan0.conf").read_text()
    assert "interface=wlan0" in (root / "etc/dnsmasq.d/ahoy.conf").read_text()


def test_enhanced_open_only_where_the_radio_can_unless_the_file_says_owe(tmp_path: Path) -> None:
    system = RecordingSystem()  # its radio runs one network at a time
    apply_config(parse_config(""), tmp_path / "data", root=tmp_path / "root", system=system)
    assert system.bridge is None and system.address == ("wlan0", "10.42.0.1", 24)
    forced = parse_config("open_network_encryption = owe\n")
    apply_config(forced, tmp_path / "data", root=tmp_path / "root", system=system)
    assert system.bridge == "wlan0" and system.address == ("br-ahoy", "10.42.0.1", 24)


def test_a_box_of_a_site_routes_between_hotspots_and_a_box_alone_is_left_as_it_is(
    tmp_path: Path,
) -> None:
    alone = RecordingSystem()
    apply_config(CONFIG, tmp_path / "data", root=tmp_path / "root", system=alone)
    assert alone.forward == "0"
    system = RecordingSystem()
    site = parse_config("site_name = ship\nhotspot_subnet = 10.42.7.0/24\n")
    report = apply_config(site, tmp_path / "data", root=tmp_path / "root", system=system)
    assert system.forward == "1" and system.address == ("wlan0", "10.42.7.1", 24)
    assert "turned routing between the site's hotspots on" in report.actions
    system.commands.clear()
    apply_config(site, tmp_path / "data", root=tmp_path / "root", system=system)
    assert system.commands == []


def test_lan_mode_stops_the_hotspot_and_its_dhcp_and_dns_and_lets_networkd_take_the_uplink(
    tmp_path: Path,
) -> None:
    system = RecordingSystem()
    system.wired = {}
    apply_config(CONFIG, tmp_path / "data", root=tmp_path / "root", system=system)
    assert {"dnsmasq", "hostapd@wlan0"} <= system.active
    lan = parse_config("hotspot = off\nuplink_interface = eth0\n")
    report = apply_config(lan, tmp_path / "data", root=tmp_path / "root", system=system)
    assert report.problems == []
    assert system.active == {"coturn"}
    etc = tmp_path / "root" / "etc"
    assert not (etc / "dnsmasq.d" / "ahoy.conf").exists()
    assert not (etc / "hostapd" / "wlan0.conf").exists()
    assert "DHCP=ipv4" in (etc / "systemd" / "network" / "50-ahoy-hotspot.network").read_text()
    assert system.networkd_reloads == 2  # reload, then reconfigure eth0
    system.commands.clear()
    again = apply_config(lan, tmp_path / "data", root=tmp_path / "root", system=system)
    assert again == ApplyReport() and system.commands == []


def test_lan_mode_over_wifi_joins_the_network_with_wpa_supplicant_and_leaves_it_for_the_hotspot(
    tmp_path: Path,
) -> None:
    system = RecordingSystem()
    root, data = tmp_path / "root", tmp_path / "data"
    apply_config(CONFIG, data, root=root, system=system)
    lan = parse_config("hotspot = off\nuplink_wifi_name = Ship Wi-Fi\n"
                       "uplink_wifi_passphrase = deck two password\n")
    assert lan.uplink_interface == "wlan0"  # the Pi's own radio unless told otherwise
    report = apply_config(lan, data, root=root, system=system)
    assert report.problems == []
    assert system.active == {"coturn", "wpa_supplicant@wlan0"}
    wpa = root / "etc" / "wpa_supplicant" / "wpa_supplicant-wlan0.conf"
    assert wpa.stat().st_mode & 0o777 == 0o600
    assert "deck two password" not in wpa.read_text()
    assert render.wpa_psk("deck two password", "Ship Wi-Fi") in wpa.read_text()
    network = (root / "etc" / "systemd" / "network" / "50-ahoy-hotspot.network").read_text()
    assert "Name=wlan0" in network and "DHCP=ipv4" in network
    system.commands.clear()
    assert apply_config(lan, data, root=root, system=system) == ApplyReport()
    assert system.commands == []
    # Back to a hotspot on the same radio: wpa_supplicant must let go of it.
    report = apply_config(CONFIG, data, root=root, system=system)
    assert report.problems == []
    assert not wpa.exists()
    assert ["systemctl", "stop", "wpa_supplicant@wlan0"] in system.commands
    assert system.active == {"dnsmasq", "coturn", "hostapd@wlan0"}


def test_uplink_beside_the_hotspot_keeps_the_hotspot_and_lets_networkd_take_the_cable(
    tmp_path: Path,
) -> None:
    system = RecordingSystem()
    root, data = tmp_path / "root", tmp_path / "data"
    both = parse_config("wifi_passphrase = correct horse\ncountry = DE\nuplink = on\n")
    report = apply_config(both, data, root=root, system=system)
    assert report.problems == []
    assert system.active == {"dnsmasq", "coturn", "hostapd@wlan0"}
    assert system.address == ("wlan0", "10.42.0.1", 24)
    network = root / "etc" / "systemd" / "network"
    assert "Address=10.42.0.1/24" in (network / "50-ahoy-hotspot.network").read_text()
    uplink = (network / "50-ahoy-uplink.network").read_text()
    assert "Name=eth0" in uplink and "DHCP=ipv4" in uplink
    assert ["networkctl", "reconfigure", "eth0"] in system.commands
    assert "interface=wlan0" in (root / "etc" / "dnsmasq.d" / "ahoy.conf").read_text()
    system.commands.clear()
    assert apply_config(both, data, root=root, system=system) == ApplyReport()
    assert system.commands == []
    # The ship's DHCP server answers: apply again (the service asks for it) makes coturn
    # relay at that address, which both sides reach.
    system.leases["eth0"] = "192.168.77.120"
    report = apply_config(both, data, root=root, system=system)
    assert "relay-ip=192.168.77.120" in (root / "etc" / "turnserver.conf").read_text()
    assert system.commands == [["systemctl", "restart", "coturn"]]
    # uplink = off again: networkd forgets the cable; the hotspot is untouched.
    report = apply_config(CONFIG, data, root=root, system=system)
    assert not (network / "50-ahoy-uplink.network").exists()
    assert ["networkctl", "reload"] in system.commands
    assert not [c for c in system.commands if "hostapd@wlan0" in c]


def test_a_wifi_uplink_beside_the_hotspot_runs_wpa_supplicant_on_the_second_radio(
    tmp_path: Path,
) -> None:
    system = RecordingSystem()
    root, data = tmp_path / "root", tmp_path / "data"
    both = parse_config("uplink = on\nuplink_interface = wlan1\nuplink_wifi_name = Ship Wi-Fi\n")
    report = apply_config(both, data, root=root, system=system)
    assert report.problems == []
    assert system.active == {"dnsmasq", "coturn", "hostapd@wlan0", "wpa_supplicant@wlan1"}
    assert (root / "etc" / "wpa_supplicant" / "wpa_supplicant-wlan1.conf").exists()
    assert not (root / "etc" / "wpa_supplicant" / "wpa_supplicant-wlan0.conf").exists()
    report = apply_config(CONFIG, data, root=root, system=system)
    assert ["systemctl", "stop", "wpa_supplicant@wlan1"] in system.commands
    assert system.active == {"dnsmasq", "coturn", "hostapd@wlan0"}


def test_a_wifi_uplink_on_a_wired_port_is_a_problem_in_words(tmp_path: Path) -> None:
    system = RecordingSystem()
    lan = parse_config("hotspot = off\nuplink_wifi_name = Ship Wi-Fi\nuplink_interface = eth0\n")
    report = apply_config(lan, tmp_path / "data", root=tmp_path / "root", system=system)
    assert report.problems == [
        "uplink_interface eth0 is not a Wi-Fi interface on this box (or is not there), so it "
        "cannot join the Wi-Fi network 'Ship Wi-Fi'; wlan0 is the Pi's own Wi-Fi, wlan1 a USB "
        "adapter"]
    assert "wpa_supplicant@eth0" not in system.active


def test_only_the_service_whose_file_changed_is_restarted(tmp_path: Path) -> None:
    system = RecordingSystem()
    apply_config(CONFIG, tmp_path / "data", root=tmp_path / "root", system=system)
    system.commands.clear()
    changed = parse_config("wifi_passphrase = another passphrase\ncountry = DE\n")
    report = apply_config(changed, tmp_path / "data", root=tmp_path / "root", system=system)
    assert system.commands == [["systemctl", "restart", "hostapd@wlan0"]]
    assert [p.name for p in report.changed_files] == ["wlan0.conf"]


def test_after_a_reboot_stopped_services_and_rules_are_started_without_rewriting(
    tmp_path: Path,
) -> None:
    apply_config(CONFIG, tmp_path / "data", root=tmp_path / "root", system=RecordingSystem())
    rebooted = RecordingSystem()
    report = apply_config(CONFIG, tmp_path / "data", root=tmp_path / "root", system=rebooted)
    assert report.changed_files == []
    assert ["nft", "-f", str(tmp_path / "root/etc/ahoy/nftables.nft")] in rebooted.commands
    assert ["systemctl", "start", "dnsmasq"] in rebooted.commands
    assert not any(c[:2] == ["systemctl", "restart"] for c in rebooted.commands)


def test_a_missing_wifi_adapter_is_reported_and_its_services_wait_for_it(
    tmp_path: Path,
) -> None:
    """No radio: hostapd, dnsmasq and coturn are not started (they would fail and be
    restarted in a loop); the files are written and they start at the next apply."""
    system = RecordingSystem()
    config = BoxConfig(interface="wlan7")
    report = apply_config(config, tmp_path / "data", root=tmp_path / "root", system=system)
    assert report.problems == [
        "network interface wlan7 not found: is the Wi-Fi adapter plugged in, "
        "and is interface right in ahoy.txt?",
    ]
    assert report.warnings == [
        "the hotspot, DHCP and STUN/TURN were not started: there is no wlan7"]
    assert not system.active & {"dnsmasq", "coturn", "hostapd@wlan7"}
    assert (tmp_path / "root" / "etc" / "hostapd" / "wlan7.conf").exists()
    assert system.nft_loaded
    system.interfaces.add("wlan7")  # the adapter is plugged in; the box applies again
    report = apply_config(config, tmp_path / "data", root=tmp_path / "root", system=system)
    assert (report.problems, report.warnings) == ([], [])
    assert {"dnsmasq", "coturn", "hostapd@wlan7"} <= system.active


def test_a_failing_command_becomes_a_readable_problem(tmp_path: Path) -> None:
    class Broken(RecordingSystem):
        def run(self, argv: Sequence[str]) -> CommandResult:
            if list(argv)[:2] == ["systemctl", "restart"]:
                return CommandResult(1, "Job for coturn.service failed.\nsee journalctl")
            return super().run(argv)

    report = apply_config(CONFIG, tmp_path / "data", root=tmp_path / "root", system=Broken())
    assert "could not run systemctl restart coturn: see journalctl" in report.problems


def test_authorized_keys_is_removed_when_the_key_is_taken_out(tmp_path: Path) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGXkS2Db1bP2BuRSsbZ1jaq4X4Ms8bOhhz1KzGSWTY5e me"
    with_key = parse_config(f"ssh_authorized_key = {key}")
    apply_config(with_key, tmp_path / "data", root=tmp_path / "root")
    keys = tmp_path / "root" / "root" / ".ssh" / "authorized_keys"
    assert key in keys.read_text()
    apply_config(BoxConfig(), tmp_path / "data", root=tmp_path / "root")
    assert not keys.exists()


def test_someone_elses_authorized_keys_is_left_alone(tmp_path: Path) -> None:
    keys = tmp_path / "root" / "root" / ".ssh" / "authorized_keys"
    keys.parent.mkdir(parents=True)
    keys.write_text("ssh-ed25519 AAAA their-own\n")
    apply_config(BoxConfig(), tmp_path / "data", root=tmp_path / "root")
    assert keys.read_text() == "ssh-ed25519 AAAA their-own\n"


def test_hostapd_file_follows_the_interface(tmp_path: Path) -> None:
    assert apply.target_path(tmp_path, render.HOSTAPD, BoxConfig(interface="wlan1")) == (
        tmp_path / "etc/hostapd/wlan1.conf"
    )


# --- the command line


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioning", *args],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
    )


def test_check_says_what_is_wrong_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "ahoy.txt"
    bad.write_text("wifi_passphrase = short\n")
    result = cli("check", "--config", str(bad))
    assert result.returncode == 1
    assert "line 1: wifi_passphrase must be 8 to 63 characters" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_of_a_good_file_summarises_it(tmp_path: Path) -> None:
    good = tmp_path / "ahoy.txt"
    good.write_text("wifi_name = Boat\ncountry = DE\n")
    result = cli("check", "--config", str(good))
    assert result.returncode == 0, result.stderr
    assert "Wi-Fi 'Boat' (open network), 2.4 GHz channel 6 (DE)" in result.stdout
    good.write_text("wifi_name = Boat\nuplink = on\n")
    result = cli("check", "--config", str(good))
    assert result.returncode == 0, result.stderr
    assert "on wlan0; also on the network on eth0 (dhcp), nothing routed" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--config", "/nonexistent/ahoy.txt"], "does not exist"),
        (["check", "--config", "/"], "is a folder"),
    ],
)
def test_check_explains_unreadable_files(args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.returncode == 1
    assert message in result.stderr


def test_usage_errors_exit_2_and_help_works() -> None:
    assert cli().returncode == 2
    assert cli("render").returncode == 2
    for command in ("render", "check", "apply"):
        result = cli(command, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout


def test_apply_files_only_with_a_bad_file_uses_defaults_and_exits_1(tmp_path: Path) -> None:
    boot = tmp_path / "boot" / "ahoy.txt"
    boot.parent.mkdir()
    boot.write_text("channel = 99\n")
    result = cli(
        "apply", "--files-only", "--config", str(boot),
        "--data-dir", str(tmp_path / "data"), "--root", str(tmp_path / "root"),
    )
    assert result.returncode == 1
    assert "using the safe defaults" in result.stderr
    assert "Ahoy admin password:" in result.stdout
    assert (tmp_path / "root" / "etc" / "hostapd" / "wlan0.conf").exists()
    again = cli(
        "apply", "--files-only", "--config", str(boot),
        "--data-dir", str(tmp_path / "data"), "--root", str(tmp_path / "root"),
    )
    assert "nothing to change" in again.stdout
    assert "admin password" not in again.stdout


def test_apply_for_real_needs_root(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root")
    result = cli("apply", "--config", str(tmp_path / "ahoy.txt"))
    assert result.returncode == 1 and "needs root" in result.stderr


def test_moving_the_hotspot_to_another_adapter_stops_the_old_access_point(
    tmp_path: Path,
) -> None:
    system = RecordingSystem()
    apply_config(BoxConfig(), tmp_path / "data", root=tmp_path / "root", system=system)
    system.commands.clear()
    apply_config(BoxConfig(interface="wlan1"), tmp_path / "data", root=tmp_path / "root",
                 system=system)
    assert ["systemctl", "stop", "hostapd@wlan0"] in system.commands
    assert ["systemctl", "restart", "hostapd@wlan1"] in system.commands
    assert not (tmp_path / "root/etc/hostapd/wlan0.conf").exists()


def test_service_user_gets_the_data_dir_secrets(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing owners needs root")
    import pwd

    nobody = pwd.getpwnam("nobody")
    apply_config(BoxConfig(), tmp_path / "data", root=tmp_path / "root", service_user="nobody")
    store = DataDir(tmp_path / "data")
    for path in (store.turn_secret, store.tls / "server.key", store.secrets):
        assert path.stat().st_uid == nobody.pw_uid
    # An unknown user is skipped, not an error (development machines).
    apply_config(BoxConfig(), tmp_path / "data", root=tmp_path / "root", service_user="no-such")


def test_an_interface_that_cannot_be_an_access_point_is_refused_and_nothing_changes(
    tmp_path: Path,
) -> None:
    system = RecordingSystem()
    system.interfaces.add("eth0")  # it exists, but is wired
    wired = parse_config("interface = eth0\n")
    report = apply_config(wired, tmp_path / "data", root=tmp_path / "root", system=system)
    assert report.problems == [
        "interface eth0 is not a Wi-Fi interface (it is wired); nothing was changed"
    ]
    assert system.commands == [] and system.address is None
    assert not (tmp_path / "root").exists()
