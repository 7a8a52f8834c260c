"""Make the machine match the config: files in /etc, the interface, the radio, services.

Idempotent: every step first looks at the current state and changes only what
differs, and a service is restarted only when one of its files changed (and
started if it is not running). Running `apply` twice changes nothing the
second time.

The steps that touch the machine go through `System`, so tests can record
them; `HostSystem` is the real thing (subprocess and pyroute2, needs root).
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from provisioning import credentials, mesh, render, site, tls, wireless
from provisioning.config import MESH_BACKBONE, BoxConfig
from provisioning.datadir import DataDir, write_file

NFT_TABLE = ("inet", "ahoy")
# The box's own nats-server, only when the box is one of a site (docs/site.md).
SITE_SERVICE = "ahoy-nats.service"


@dataclass(frozen=True)
class Target:
    """Where one rendered file goes, who may read it, and which service uses it."""

    path: str  # relative to the root; {interface} is filled in
    mode: int = 0o644
    group: str | None = None
    service: str | None = None  # systemd unit; {interface} is filled in


TARGETS: dict[str, Target] = {
    # hostapd@<interface> binds to the interface's device, so a USB adapter works.
    render.HOSTAPD: Target("etc/hostapd/{interface}.conf", 0o600, service="hostapd@{interface}"),
    render.DNSMASQ: Target("etc/dnsmasq.d/ahoy.conf", service="dnsmasq"),
    render.NFTABLES: Target("etc/ahoy/nftables.nft", 0o600),
    render.TURNSERVER: Target("etc/turnserver.conf", 0o640, group="turnserver", service="coturn"),
    render.NETWORKD: Target("etc/systemd/network/50-ahoy-hotspot.network"),
    render.NETWORKD_UPLINK: Target("etc/systemd/network/50-ahoy-uplink.network"),
    render.AUTHORIZED_KEYS: Target("root/.ssh/authorized_keys", 0o600),
    # LAN mode over Wi-Fi: Debian's wpa_supplicant@<interface> reads this very path.
    render.WPA_SUPPLICANT: Target("etc/wpa_supplicant/wpa_supplicant-{uplink}.conf", 0o600,
                                  service="wpa_supplicant@{uplink}"),
}


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    output: str


class System(Protocol):
    """The machine-changing operations `apply` needs."""

    def run(self, argv: Sequence[str]) -> CommandResult: ...

    def ensure_address(self, interface: str, address: str, prefixlen: int) -> bool:
        """Give `interface` this IPv4 address and bring it up; True if changed.

        A Wi-Fi interface gets exactly this address; any other keeps its own.
        Raises LookupError when the interface does not exist.
        """
        ...

    def access_point_problem(self, interface: str) -> str | None:
        """Why `interface` cannot carry the hotspot, in words; None if it can or is not there."""
        ...

    def address_of(self, interface: str) -> str | None:
        """The interface's first IPv4 address now; None without one (or without it)."""
        ...

    def enhanced_open_problem(self, interface: str) -> str | None:
        """Why the radio of `interface` cannot offer Wi-Fi Enhanced Open; None if it can."""
        ...

    def ensure_bridge(self, bridge: str, port: str | None) -> bool:
        """With a `port` (the hotspot's Wi-Fi interface): the bridge exists and is up, and the
        port keeps no IPv4 address of its own (hostapd adds it to the bridge). Without: no
        such bridge. True if anything changed."""
        ...


class HostSystem:
    """The real machine: commands via subprocess, addresses via pyroute2 (root)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def run(self, argv: Sequence[str]) -> CommandResult:
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=60, check=False
            )
        except FileNotFoundError:
            return CommandResult(127, f"{argv[0]} is not installed")
        except subprocess.TimeoutExpired:
            return CommandResult(124, f"{argv[0]} did not finish within 60 s")
        return CommandResult(done.returncode, (done.stdout + done.stderr).strip())

    def access_point_problem(self, interface: str) -> str | None:
        return wireless.access_point_problem(interface, netns=self.netns)

    def address_of(self, interface: str) -> str | None:
        from pyroute2 import IPRoute

        with IPRoute(netns=self.netns) if self.netns else IPRoute() as ipr:
            found = ipr.link_lookup(ifname=interface)
            if not found:
                return None
            for msg in ipr.get_addr(index=found[0], family=socket.AF_INET):
                address: str = msg.get("IFA_ADDRESS")
                return address
        return None

    def enhanced_open_problem(self, interface: str) -> str | None:
        return wireless.enhanced_open_problem(interface, netns=self.netns)

    def ensure_bridge(self, bridge: str, port: str | None) -> bool:
        from pyroute2 import IPRoute

        changed = False
        with IPRoute(netns=self.netns) if self.netns else IPRoute() as ipr:
            found = ipr.link_lookup(ifname=bridge)
            if port is None:
                if found:
                    ipr.link("del", index=found[0])
                    changed = True
                return changed
            if not found:
                ipr.link("add", ifname=bridge, kind="bridge")
                found = ipr.link_lookup(ifname=bridge)
                changed = True
            if not ipr.get_links(found[0])[0]["flags"] & 1:  # IFF_UP
                ipr.link("set", index=found[0], state="up")
                changed = True
            for index in ipr.link_lookup(ifname=port):
                for msg in ipr.get_addr(index=index, family=socket.AF_INET):
                    ipr.addr("del", index=index, address=msg.get("IFA_ADDRESS"),
                             prefixlen=msg["prefixlen"])
                    changed = True
        return changed

    def ensure_address(self, interface: str, address: str, prefixlen: int) -> bool:
        from pyroute2 import IPRoute

        # The hotspot's Wi-Fi interface (or its bridge) is ours alone: addresses from old
        # configs go. A wired or loopback interface named by mistake keeps its own.
        exclusive = (interface == render.BRIDGE
                     or wireless.is_wireless(interface, netns=self.netns))
        changed = False
        with IPRoute(netns=self.netns) if self.netns else IPRoute() as ipr:
            found = ipr.link_lookup(ifname=interface)
            if not found:
                raise LookupError(interface)
            index = found[0]
            present = False
            for msg in ipr.get_addr(index=index, family=socket.AF_INET):
                have, plen = msg.get("IFA_ADDRESS"), msg["prefixlen"]
                if have == address and plen == prefixlen:
                    present = True
                elif exclusive:
                    ipr.addr("del", index=index, address=have, prefixlen=plen)
                    changed = True
            if not present:
                ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
                changed = True
            link = ipr.get_links(index)[0]
            if not link["flags"] & 1:  # IFF_UP
                ipr.link("set", index=index, state="up")
                changed = True
        return changed


@dataclass
class ApplyReport:
    """What apply changed and what went wrong; `problems` empty means all is well."""

    changed_files: list[Path] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changed_files or self.actions)


def target_path(root: Path, name: str, config: BoxConfig) -> Path:
    return root / TARGETS[name].path.format(interface=config.interface,
                                             uplink=config.uplink_interface)


def write_files(
    config: BoxConfig, data_dir: Path, root: Path, report: ApplyReport,
    enhanced_open: bool = False, uplink_now: str | None = None,
) -> dict[str, bool]:
    """Secrets, certificates and every rendered file; which files changed, by name.

    A data partition that cannot be written (full, failing) costs calls (TURN,
    HTTPS) but never the hotspot: hostapd and dnsmasq get their files anyway.
    """
    try:
        secret = credentials.turn_secret(data_dir)
    except OSError as exc:
        secret = secrets.token_urlsafe(32)  # coturn starts; TURN works once it is saved
        report.problems.append(f"could not save the TURN secret ({exc.strerror}): calls "
                               "through the box's TURN server will fail")
    try:
        tls.ensure_certificates(DataDir(data_dir).tls, config.box_name, config.dns_names,
                                config.fixed_addresses, notes=report.warnings)
    except OSError as exc:
        report.problems.append(f"could not make the box's certificate ({exc.strerror}): "
                               "the secure address (https) will not work")
    files = render.render_all(config, secret, lease_file=data_dir / "dnsmasq.leases",
                              enhanced_open=enhanced_open, uplink_now=uplink_now)
    changed: dict[str, bool] = {}
    for name, text in files.items():
        target = TARGETS[name]
        path = target_path(root, name, config)
        changed[name] = write_file(path, text.encode("utf-8"), mode=target.mode)
        if target.group:
            _give_group(path, target.group)
        if changed[name]:
            report.changed_files.append(path)
    changed[SITE_SERVICE] = _write_site_files(config, data_dir, report)
    keys = target_path(root, render.AUTHORIZED_KEYS, config)
    if render.AUTHORIZED_KEYS not in files and _managed_by_us(keys):
        keys.unlink()
        report.changed_files.append(keys)
    uplink = target_path(root, render.NETWORKD_UPLINK, config)
    if render.NETWORKD_UPLINK not in files and _written_by_us(uplink):
        # uplink = off again: systemd-networkd forgets that interface (apply reloads it).
        uplink.unlink()
        report.changed_files.append(uplink)
        changed[render.NETWORKD_UPLINK] = True
    return changed


def _write_site_files(config: BoxConfig, data_dir: Path, report: ApplyReport) -> bool:
    """The nats-server config and certificates of a box in a site; True if they changed.

    Without site_name nothing is written (and the server is stopped, see
    `apply_config`); without a stored site secret load_config has already
    reported the problem and the box works alone.
    """
    if not config.in_site:
        return False
    secret = credentials.read_site_secret(data_dir)
    if secret is None:
        return False
    try:
        paths, changed = site.ensure_site_files(config, data_dir, secret)
    except OSError as exc:
        report.problems.append(f"could not write the site's files ({exc.strerror}): this box "
                               "works alone until they can be written")
        return False
    if changed:
        report.changed_files.append(paths.nats_config)
    return changed


def mesh_config_path(root: Path, config: BoxConfig) -> Path:
    """wpa_supplicant@<mesh_interface> reads this file (Debian's unit)."""
    return root / f"etc/wpa_supplicant/wpa_supplicant-{config.mesh_interface}.conf"


def _write_mesh_files(config: BoxConfig, data_dir: Path, root: Path,
                      report: ApplyReport) -> bool:
    """The mesh radio's wpa_supplicant config (its key comes from the site secret);
    True if it changed. Nothing without mesh_interface or without a stored secret."""
    if not config.mesh_interface or not config.in_site:
        return False
    secret = credentials.read_site_secret(data_dir)
    if secret is None:
        report.problems.append("mesh_interface is set but this box has no site_secret: the "
                               "mesh is not started")
        return False
    path = mesh_config_path(root, config)
    changed = write_file(path, mesh.render_wpa_supplicant(config, secret).encode(), mode=0o600)
    if changed:
        report.changed_files.append(path)
    return changed


def _set_mesh(config: BoxConfig, changed: bool, system: System, report: ApplyReport) -> None:
    """batman-adv over the mesh radio (bat0, the backbone), and the radio's mesh."""
    radio = config.mesh_interface
    if not radio or not config.in_site:
        return
    have = system.run(["ip", "link", "show", MESH_BACKBONE]).returncode == 0
    state = system.run(["ip", "-o", "link", "show", radio]).output
    ready = (have and f"master {MESH_BACKBONE}" in state and f"mtu {mesh.MESH_MTU}" in state
             and ",UP" in state)
    if not ready:
        for argv in mesh.batman_commands(config, have_backbone=have):
            _step(system, argv, report, f"ran {' '.join(argv)}")
    _run_service(f"wpa_supplicant@{radio}", changed, system, report)


def _written_by_us(path: Path) -> bool:
    try:
        return path.read_text().startswith(f"# {render.HEADER}")
    except OSError:
        return False


def _managed_by_us(path: Path) -> bool:
    try:
        return path.read_text().startswith(render.AUTHORIZED_KEYS_HEADER)
    except OSError:
        return False


def _give_group(path: Path, group: str) -> None:
    """Let a service's group read its file (coturn runs as turnserver)."""
    if os.geteuid() != 0:
        return
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return
    if path.stat().st_gid != gid:
        os.chown(path, 0, gid)


def share_with_service(data_dir: Path, user: str) -> None:
    """Hand the data dir's secrets, certificates and status to the service's user.

    apply runs as root and the service does not: it must read the TLS key and
    the TURN secret, and change the admin password. Only when run as root and
    the user exists (on a development machine neither is true).
    """
    if os.geteuid() != 0:
        return
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return
    store = DataDir(data_dir)
    for folder in (store.secrets, store.tls, store.last_good_config.parent,
                   site.site_dir(data_dir)):
        if not folder.exists():
            continue
        for path in [folder, *folder.rglob("*")]:
            stat = path.stat()
            if (stat.st_uid, stat.st_gid) != (account.pw_uid, account.pw_gid):
                os.chown(path, account.pw_uid, account.pw_gid)


def apply_config(
    config: BoxConfig,
    data_dir: Path,
    *,
    root: Path = Path("/"),
    system: System | None = None,
    service_user: str | None = None,
) -> ApplyReport:
    """Write the files under `root`; with a `system`, also change the machine.

    Without `system` only files are written (secrets and certificates in the
    data dir, configs under `root`), which is what tests and dry runs use.
    An interface that cannot carry the hotspot (not Wi-Fi, no access point
    mode) is refused before anything is written or changed.
    """
    report = ApplyReport()
    if system is not None and not config.lan_mode:
        problem = system.access_point_problem(config.interface)
        if problem:
            report.problems.append(f"{problem}; nothing was changed")
            return report
    # Enhanced Open where the setting and the radio allow it (docs/config.md); without a
    # machine to ask, only when the setting says `owe`.
    owe = wireless.offers_enhanced_open(
        config, system.enhanced_open_problem if system is not None else lambda _: "unknown")
    # Beside the hotspot with DHCP: coturn relays at the uplink's address of the moment
    # (the service asks for apply again when the network's DHCP server gives another).
    uplink_now = (system.address_of(config.uplink_interface)
                  if system is not None and config.hotspot_and_uplink else None)
    changed = write_files(config, data_dir, root, report, owe, uplink_now)
    mesh_changed = _write_mesh_files(config, data_dir, root, report)
    if service_user:
        share_with_service(data_dir, service_user)
    if system is None:
        return report
    _stop_other_access_points(config, root, system, report)
    _stop_other_wifi_clients(config, root, system, report)
    if config.lan_mode:
        _serve_the_lan(config, root, changed.get(render.NETWORKD, False), system, report,
                       wifi_changed=changed.get(render.WPA_SUPPLICANT, False))
        radio_present = True
    else:
        _set_radio(config, system, report)
        _set_bridge(config, owe, system, report)
        radio_present = _set_address(config, owe, system, report)
        if config.hotspot_and_uplink or changed.get(render.NETWORKD_UPLINK):
            # uplink = on: the existing network too, on its own interface (or, just
            # turned off, systemd-networkd lets go of it).
            _join_the_network(config, changed.get(render.NETWORKD_UPLINK, False), system,
                              report, wifi_changed=changed.get(render.WPA_SUPPLICANT, False))
    if config.mesh_interface and credentials.read_site_secret(data_dir) is not None:
        _set_mesh(config, mesh_changed, system, report)
    _set_forwarding(config, system, report)
    _load_firewall(config, root, changed.get(render.NFTABLES, False), system, report)
    names: tuple[str, ...] = (render.TURNSERVER,) if config.lan_mode else (
        render.DNSMASQ, render.TURNSERVER, render.HOSTAPD)
    if not radio_present:
        # Without its interface hostapd cannot start and coturn cannot take the box's
        # address: started anyway, systemd would restart them in a loop. They start with
        # the next apply: on the image, udev applies again when a Wi-Fi interface appears.
        # A warning as well as the problem above: warnings are shown on the admin page.
        report.warnings.append(
            f"the hotspot, DHCP and STUN/TURN were not started: there is no {config.interface}")
        names = ()
    for name in names:
        service = TARGETS[name].service
        assert service is not None
        _run_service(service.format(interface=config.interface), changed[name], system, report)
    if config.in_site and credentials.read_site_secret(data_dir) is not None:
        _run_service(SITE_SERVICE, changed[SITE_SERVICE], system, report)
    elif site.SitePaths(site.site_dir(data_dir)).nats_config.exists():
        # The box has left its site: the server stops and stays stopped (its unit
        # starts only with a config); its stream stays on the data partition.
        _step(system, ["systemctl", "stop", SITE_SERVICE], report,
              f"stopped {SITE_SERVICE} (this box is not in a site)", warn_only=True)
        site.SitePaths(site.site_dir(data_dir)).nats_config.unlink(missing_ok=True)
    return report


def _stop_other_access_points(
    config: BoxConfig, root: Path, system: System, report: ApplyReport
) -> None:
    """When the hotspot moved to another adapter, stop the old one's hostapd; in LAN mode,
    every one of ours."""
    current = target_path(root, render.HOSTAPD, config)
    for path in sorted(current.parent.glob("*.conf")):
        if path == current and not config.lan_mode:
            continue
        _retire(path, f"hostapd@{path.stem}", "LAN mode: no hotspot" if config.lan_mode
                else f"the hotspot moved to {config.interface}", system, report)


def _stop_other_wifi_clients(
    config: BoxConfig, root: Path, system: System, report: ApplyReport
) -> None:
    """Stop (and forget) every Wi-Fi client wpa_supplicant of ours but the one LAN mode over
    Wi-Fi uses now: one left on the hotspot's radio would fight hostapd for it. The
    mesh radio's (the same kind of file, see mesh.py) is the mesh's own business."""
    current = target_path(root, render.WPA_SUPPLICANT, config)
    keep = config.uplink and bool(config.uplink_wifi_name)
    for path in sorted(current.parent.glob("wpa_supplicant-*.conf")):
        if keep and path == current:
            continue
        if config.mesh_interface and path.name == f"wpa_supplicant-{config.mesh_interface}.conf":
            continue
        interface = path.stem.removeprefix("wpa_supplicant-")
        _retire(path, f"wpa_supplicant@{interface}",
                "the box no longer joins a Wi-Fi network there", system, report)


def _retire(path: Path, unit: str, why: str, system: System, report: ApplyReport) -> None:
    """Stop `unit` and remove its config `path`, if provisioning wrote that file (a file
    of someone else's, or one that cannot be read, is left alone)."""
    try:
        ours = path.read_text().startswith(f"# {render.HEADER}")
    except OSError:
        return
    if ours:
        _step(system, ["systemctl", "stop", unit], report, f"stopped {unit} ({why})",
              warn_only=True)
        path.unlink()
        report.changed_files.append(path)


def _join_the_wifi(config: BoxConfig, changed: bool, system: System,
                   report: ApplyReport) -> None:
    """LAN mode over Wi-Fi: wpa_supplicant joins the network on the uplink's radio."""
    iface = config.uplink_interface
    if system.run(["iw", "dev", iface, "info"]).returncode != 0:
        report.problems.append(
            f"uplink_interface {iface} is not a Wi-Fi interface on this box (or is not "
            f"there), so it cannot join the Wi-Fi network {config.uplink_wifi_name!r}; "
            "wlan0 is the Pi's own Wi-Fi, wlan1 a USB adapter")
        return
    _run_service(f"wpa_supplicant@{iface}", changed, system, report)


def _serve_the_lan(
    config: BoxConfig, root: Path, changed: bool, system: System, report: ApplyReport,
    wifi_changed: bool = False,
) -> None:
    """LAN mode: no DHCP or DNS of ours on the network (dnsmasq stopped, its file gone);
    systemd-networkd takes the uplink's address (DHCP or fixed) when its file changed."""
    dnsmasq = target_path(root, render.DNSMASQ, config)
    if dnsmasq.exists():
        _step(system, ["systemctl", "stop", "dnsmasq"], report,
              "stopped dnsmasq (LAN mode: the network has its own DHCP and DNS)",
              warn_only=True)
        dnsmasq.unlink()
        report.changed_files.append(dnsmasq)
    _join_the_network(config, changed, system, report, wifi_changed)


def _join_the_network(config: BoxConfig, changed: bool, system: System, report: ApplyReport,
                      wifi_changed: bool = False) -> None:
    """The uplink (LAN mode, or beside the hotspot): wpa_supplicant joins the Wi-Fi
    network if there is one; systemd-networkd takes the uplink's address (DHCP or fixed)
    when its file changed."""
    if config.uplink and config.uplink_wifi_name:
        _join_the_wifi(config, wifi_changed, system, report)
    if changed:
        _step(system, ["networkctl", "reload"], report,
              f"asked systemd-networkd to configure {config.uplink_interface}")
        _step(system, ["networkctl", "reconfigure", config.uplink_interface], report,
              f"reconfigured {config.uplink_interface}", warn_only=True)


def _set_radio(config: BoxConfig, system: System, report: ApplyReport) -> None:
    if config.country:
        current = system.run(["iw", "reg", "get"])
        if f"country {config.country}:" not in current.output:
            _step(system, ["iw", "reg", "set", config.country], report,
                  f"set the Wi-Fi country to {config.country}")
    # Power save makes a Pi's AP drop and delay packets; calls stutter.
    state = system.run(["iw", "dev", config.interface, "get", "power_save"])
    if "off" not in state.output.lower():
        _step(system, ["iw", "dev", config.interface, "set", "power_save", "off"], report,
              f"turned Wi-Fi power saving off on {config.interface}", warn_only=True)


def _set_bridge(config: BoxConfig, owe: bool, system: System, report: ApplyReport) -> None:
    """With Enhanced Open, the bridge over both networks carries the box's address (hostapd
    adds the two Wi-Fi interfaces to it); without, no bridge of ours is left behind."""
    port = config.interface if owe else None
    try:
        if system.ensure_bridge(render.BRIDGE, port):
            report.actions.append(
                f"made the bridge {render.BRIDGE} for {config.interface} and its Enhanced "
                "Open network" if owe else f"removed the bridge {render.BRIDGE}")
    except OSError as exc:
        report.problems.append(f"could not set up the bridge {render.BRIDGE}: {exc}")


def _set_address(config: BoxConfig, owe: bool, system: System, report: ApplyReport) -> bool:
    """Give the hotspot interface (or its bridge) the box's address; False when it is not
    there."""
    link = render.hotspot_link(config, owe)
    try:
        if system.ensure_address(
            link, str(config.box_address), config.hotspot_subnet.prefixlen
        ):
            report.actions.append(
                f"set {link} to {config.box_address}/"
                f"{config.hotspot_subnet.prefixlen}"
            )
    except LookupError:
        report.problems.append(
            f"network interface {config.interface} not found: is the Wi-Fi adapter "
            "plugged in, and is interface right in ahoy.txt?"
        )
        return False
    except OSError as exc:
        report.problems.append(f"could not set the address of {link}: {exc}")
    return True


def _set_forwarding(config: BoxConfig, system: System, report: ApplyReport) -> None:
    """In a site the box routes between its phones and the other boxes' (the firewall
    allows only that). Alone it is left as it is: the firewall forwards nothing to or
    from the hotspot either way."""
    if not config.in_site:
        return
    now = system.run(["sysctl", "-n", "net.ipv4.ip_forward"])
    if now.output.strip() != "1":
        _step(system, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], report,
              "turned routing between the site's hotspots on")


def _load_firewall(
    config: BoxConfig, root: Path, changed: bool, system: System, report: ApplyReport
) -> None:
    path = target_path(root, render.NFTABLES, config)
    loaded = system.run(["nft", "list", "table", *NFT_TABLE]).returncode == 0
    if changed or not loaded:
        _step(system, ["nft", "-f", str(path)], report, "loaded the firewall rules")


def _run_service(unit: str, changed: bool, system: System, report: ApplyReport) -> None:
    if changed:
        _step(system, ["systemctl", "restart", unit], report, f"restarted {unit}")
        return
    if system.run(["systemctl", "is-active", "--quiet", unit]).returncode != 0:
        _step(system, ["systemctl", "start", unit], report, f"started {unit}")


def _step(
    system: System,
    argv: list[str],
    report: ApplyReport,
    done: str,
    *,
    warn_only: bool = False,
) -> None:
    result = system.run(argv)
    if result.returncode == 0:
        report.actions.append(done)
        return
    detail = result.output.splitlines()[-1] if result.output else f"exit {result.returncode}"
    message = f"could not run {' '.join(argv)}: {detail}"
    (report.warnings if warn_only else report.problems).append(message)
