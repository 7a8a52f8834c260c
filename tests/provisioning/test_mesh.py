"""The Wi-Fi mesh backbone without radios: config keys, the rendered mesh, batctl's output."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning import mesh
from provisioning.apply import apply_config, mesh_config_path
from provisioning.config import ConfigError, parse_config

SITE = "site_name = ship\nmesh_interface = wlan1\n"
SECRET = "tern gravel copper lantern"

ORIGINATORS = """\
[B.A.T.M.A.N. adv 2023.0, MainIF/MAC: wlan1/02:00:00:00:01:00 (bat0/3a:1c:7e:00:11:22 BATMAN_IV)]
   Originator        last-seen (#/255) Nexthop           [outgoingIF]
 * 02:00:00:00:00:00    0.560s   (251) 02:00:00:00:00:00 [     wlan1]
   02:00:00:00:02:00    1.120s   (180) 02:00:00:00:00:00 [     wlan1]
 * 02:00:00:00:02:00    1.120s   (201) 02:00:00:00:02:00 [     wlan1]
 * 02:00:00:00:03:00    2.000s   (120) 02:00:00:00:00:00 [     wlan1]
"""


def test_a_mesh_radio_makes_bat0_the_backbone_on_one_channel_for_the_whole_site() -> None:
    config = parse_config(SITE)
    assert config.backbone_interface == "bat0" and config.mesh_channel == 11
    assert parse_config("site_name = ship\n").backbone_interface == "eth0"
    assert parse_config(SITE + "backbone_interface = eth1\n").backbone_interface == "eth1"


@pytest.mark.parametrize("text, words", [
    ("mesh_interface = wlan1\n", "mesh_interface needs site_name"),
    ("site_name = ship\nmesh_interface = wlan0\n", "the mesh needs a second one"),
    (SITE + "mesh_channel = 13\n", "mesh_channel 13 is not allowed without a country set"),
    (SITE + "mesh_channel = 0\n", "mesh_channel must be between 1 and 196"),
])
def test_mesh_mistakes_are_explained(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_config(text)


def test_the_mesh_is_encrypted_with_a_password_from_the_site_secret_not_the_secret() -> None:
    config = parse_config(SITE + "country = DE\nmesh_channel = 36\n")
    text = mesh.render_wpa_supplicant(config, SECRET)
    assert 'ssid="ahoy-ship"' in text and "mode=5" in text and "key_mgmt=SAE" in text
    assert "frequency=5180" in text and "mesh_fwding=0" in text and "country=DE" in text
    assert SECRET not in text
    assert mesh.mesh_password("ship", SECRET) in text
    assert mesh.mesh_password("ship", SECRET) != mesh.mesh_password("ship", SECRET + "x")
    assert mesh.mesh_password("ship", SECRET) != mesh.mesh_password("camp", SECRET)
    assert [mesh.frequency(c) for c in (1, 6, 11, 14, 149)] == [2412, 2437, 2462, 2484, 5745]


def test_batctl_originators_give_each_node_its_route_in_use_and_quality() -> None:
    found = mesh.parse_originators(ORIGINATORS)
    assert [(n.mac, n.quality, n.via) for n in found] == [
        ("02:00:00:00:00:00", 251, "02:00:00:00:00:00"),
        ("02:00:00:00:02:00", 201, "02:00:00:00:02:00"),
        ("02:00:00:00:03:00", 120, "02:00:00:00:00:00"),
    ]
    assert found[0].quality_percent == 98 and found[0].last_seen_s == 0.56
    assert mesh.parse_originators("garbage\n" * 10) == []


class MeshSystem:
    """A pretend machine for the mesh steps: links and services as apply leaves them."""

    def __init__(self) -> None:
        self.links: dict[str, str] = {"wlan1": "3: wlan1: <BROADCAST> mtu 1500"}
        self.commands: list[list[str]] = []
        self.active: set[str] = set()

    def run(self, argv: list[str]) -> object:
        from provisioning.apply import CommandResult

        argv = list(argv)
        self.commands.append(argv)
        match argv:
            case ["ip", "link", "show", name] | ["ip", "-o", "link", "show", name]:
                return CommandResult(0 if name in self.links else 1, self.links.get(name, ""))
            case ["ip", "link", "add", "bat0", "type", "batadv"]:
                self.links["bat0"] = "9: bat0: <UP>"
            case ["ip", "link", "set", "wlan1", "mtu", mtu]:
                self.links["wlan1"] = self.links["wlan1"].replace("mtu 1500", f"mtu {mtu}")
            case ["ip", "link", "set", "wlan1", "master", "bat0"]:
                self.links["wlan1"] += " master bat0"
            case ["ip", "link", "set", "wlan1", "up"]:
                self.links["wlan1"] = self.links["wlan1"].replace("<BROADCAST>", "<BROADCAST,UP>")
            case ["systemctl", "is-active", "--quiet", unit]:
                return CommandResult(0 if unit in self.active else 3, "")
            case ["systemctl", "start" | "restart", unit]:
                self.active.add(unit)
            case ["iw", "reg", "get"]:
                return CommandResult(0, "country 00:")
            case ["iw", "dev", _, "get", "power_save"]:
                return CommandResult(0, "Power save: off")
            case ["nft", "list", "table", *_]:
                return CommandResult(1, "")
            case ["sysctl", "-n", _]:
                return CommandResult(0, "1")
        return CommandResult(0, "")

    def access_point_problem(self, interface: str) -> None:
        return None

    def enhanced_open_problem(self, interface: str) -> str:
        return "no radio here"

    def ensure_bridge(self, bridge: str, port: str | None) -> bool:
        return False

    def ensure_address(self, interface: str, address: str, prefixlen: int) -> bool:
        return False


def test_apply_puts_the_mesh_radio_under_batman_and_starts_its_mesh_once(tmp_path: Path) -> None:
    from provisioning import credentials

    data, root = tmp_path / "data", tmp_path / "root"
    credentials.set_site_secret(data, SECRET)
    config = parse_config(SITE)
    system = MeshSystem()
    report = apply_config(config, data, root=root, system=system)  # type: ignore[arg-type]
    assert not [p for p in report.problems if "mesh" in p], report.problems
    assert mesh_config_path(root, config).stat().st_mode & 0o777 == 0o600
    assert "master bat0" in system.links["wlan1"] and "mtu 1532" in system.links["wlan1"]
    assert "wpa_supplicant@wlan1" in system.active
    system.commands.clear()
    apply_config(config, data, root=root, system=system)  # type: ignore[arg-type]
    assert not [c for c in system.commands if c[:3] in (["ip", "link", "add"],
                                                        ["ip", "link", "set"])]
    assert ["systemctl", "restart", "wpa_supplicant@wlan1"] not in system.commands
