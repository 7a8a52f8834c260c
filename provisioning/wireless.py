"""Which network interface can carry the hotspot: a Wi-Fi one whose radio can be an access point.

Asked over netlink with pyroute2: rtnetlink for the interface, nl80211 for
the radio (phy) behind it and the modes the radio supports. An interface that
is not there (a USB adapter not plugged in yet) is not judged here; apply says
it is missing. Neither is one that cannot be asked about (no netlink rights):
the hotspot is not refused on a guess.
"""

from __future__ import annotations

from typing import Any

IFF_LOOPBACK = 0x8
HOW_TO_FIX = ("the hotspot needs a Wi-Fi adapter: wlan0 is the Pi's own, wlan1 a USB one "
              "(`iw dev` lists them)")


class _NotThere(Exception):
    """The interface does not exist (in this network namespace)."""


def access_point_problem(interface: str, *, netns: str | None = None) -> str | None:
    """Why `interface` cannot carry the hotspot, in words; None if it can (or is not there)."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        link = _link(interface, netns)
        if link["flags"] & IFF_LOOPBACK:
            return f"interface {interface} is the loopback interface, not Wi-Fi; {HOW_TO_FIX}"
        modes = _radio_modes(link["index"], netns)
    except _NotThere:
        return None
    except (NetlinkError, OSError):
        return None
    if modes is None:
        kind = _kind(link)
        return f"interface {interface} is not a Wi-Fi interface (it is {kind}); {HOW_TO_FIX}"
    if modes and "ap" not in modes:  # no modes read: not refused on a guess
        offered = ", ".join(sorted(modes)) or "nothing"
        return (f"the Wi-Fi adapter of interface {interface} cannot be an access point "
                f"(its driver offers {offered}); use another adapter, such as the Pi's own "
                "wlan0")
    return None


def is_wireless(interface: str, *, netns: str | None = None) -> bool:
    """True if nl80211 knows `interface` (a Wi-Fi interface); False if not or unknown."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        return _radio_modes(_link(interface, netns)["index"], netns) is not None
    except (_NotThere, NetlinkError, OSError):
        return False


def _sockets(netns: str | None) -> dict[str, Any]:
    return {"netns": netns} if netns else {}


def _link(interface: str, netns: str | None) -> Any:
    from pyroute2 import IPRoute

    with IPRoute(**_sockets(netns)) as ipr:
        found = ipr.link_lookup(ifname=interface)
        if not found:
            raise _NotThere(interface)
        return ipr.get_links(found[0])[0]


def _kind(link: Any) -> str:
    info = link.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    return f"a {kind} link" if kind else "wired"


def _radio_modes(index: int, netns: str | None) -> set[str] | None:
    """The interface types its radio supports ("ap", "station", ...); None if not Wi-Fi."""
    from pyroute2 import IW
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        iw = IW(**_sockets(netns))
    except NetlinkError:
        return None  # no nl80211 at all: no Wi-Fi driver on this machine (or namespace)
    with iw:
        try:
            found = iw.get_interface_by_ifindex(index)
        except NetlinkError:
            return None  # nl80211 does not know it: not a Wi-Fi interface
        phy = found[0].get_attr("NL80211_ATTR_WIPHY")
        modes: set[str] = set()
        for radio in iw.list_wiphy():
            if radio.get_attr("NL80211_ATTR_WIPHY") == phy:
                modes.update(radio.get_attr("NL80211_ATTR_SUPPORTED_IFTYPES") or ())
        return modes


# Wi-Fi Enhanced Open (OWE) beside the open network ("transition mode"), see
# docs/config.md "Private over the air". What the radio must do, as nl80211 says it:
# - association handled by hostapd, not by the driver or firmware (no AP SME): hostapd
#   then does OWE's key exchange. Firmware that associates phones itself (the Pi's
#   brcmfmac) answers only what it knows: open and WPA2-Personal;
# - protected management frames, which OWE requires: the BIP-CMAC cipher (00-0f-ac:6)
#   among the radio's ciphers (mac80211 lists it only for drivers that can do PMF);
# - two access points at once on the radio: the open network and the hidden OWE one.
BIP_CMAC = "00-0f-ac:6"


def enhanced_open_problem(interface: str, *, netns: str | None = None) -> str | None:
    """Why the radio behind `interface` cannot offer Enhanced Open as an access point, in
    words; None if it can. Not known (no such interface, nl80211 not answering) is a
    problem too: Enhanced Open is never switched on by a guess."""
    import subprocess

    from pyroute2.netlink.exceptions import NetlinkError

    try:
        phy, ap_sme = _radio_of(_link(interface, netns)["index"], netns)
    except _NotThere:
        return f"interface {interface} is not there"
    except (NetlinkError, OSError) as exc:
        return f"the radio of {interface} could not be asked ({exc})"
    if phy is None:
        return f"interface {interface} is not a Wi-Fi interface"
    argv = ["iw", "phy", phy, "info"]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    try:
        info = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                              check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`iw phy {phy} info` did not answer ({exc})"
    return radio_owe_problem(interface, ap_sme=ap_sme, iw_info=info)


def radio_owe_problem(interface: str, *, ap_sme: bool, iw_info: str) -> str | None:
    """The decision of `enhanced_open_problem`, from what nl80211 said: whether the driver
    has its own AP SME, and the text of `iw phy <phy> info`."""
    if ap_sme:
        return (f"the Wi-Fi adapter of {interface} associates phones in its own firmware, "
                "which offers open and WPA2 networks only")
    if "* AP\n" not in iw_info.replace(" \n", "\n"):
        return f"the Wi-Fi adapter of {interface} cannot be an access point"
    if BIP_CMAC not in iw_info:
        return (f"the Wi-Fi adapter of {interface} cannot protect management frames, which "
                "Enhanced Open requires")
    if access_points_at_once(iw_info) < 2:
        return (f"the Wi-Fi adapter of {interface} runs one network at a time; Enhanced Open "
                "beside the open network needs two")
    return None


def access_points_at_once(iw_info: str) -> int:
    """How many access point interfaces the radio allows at once, from the `valid interface
    combinations` of `iw phy <phy> info` (1 when it lists none: one interface only)."""
    import re

    section = iw_info.partition("valid interface combinations:")[2]
    lines: list[str] = []
    for line in section.splitlines():
        if line.startswith("\t") and not line.startswith("\t\t") and line.strip():
            break  # the next item of `iw phy info`
        lines.append(line.strip())
    best = 1
    for combination in " ".join(lines).split("* #{")[1:]:
        text = "#{" + combination
        total = re.search(r"total <= (\d+)", text)
        for types, limit in re.findall(r"#\{([^}]*)\} <= (\d+)", text):
            if "AP" in [t.strip() for t in types.split(",")]:
                n = int(limit) if total is None else min(int(limit), int(total.group(1)))
                best = max(best, n)
    return best


def _radio_of(index: int, netns: str | None) -> tuple[str | None, bool]:
    """The radio's name (phy0) and whether its driver has its own AP SME; (None, False)
    if the interface is not Wi-Fi."""
    from pyroute2 import IW
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        iw = IW(**_sockets(netns))
    except NetlinkError:
        return None, False
    with iw:
        try:
            found = iw.get_interface_by_ifindex(index)
        except NetlinkError:
            return None, False
        phy = found[0].get_attr("NL80211_ATTR_WIPHY")
        name, ap_sme = None, False
        for radio in iw.list_wiphy():
            if radio.get_attr("NL80211_ATTR_WIPHY") == phy:
                name = radio.get_attr("NL80211_ATTR_WIPHY_NAME") or name
                ap_sme = ap_sme or radio.get_attr("NL80211_ATTR_DEVICE_AP_SME") is not None
        return name or f"phy{phy}", ap_sme


def offers_enhanced_open(config: Any, problem: Any = enhanced_open_problem) -> bool:
    """Whether the hotspot offers Enhanced Open beside its open network: never with a
    passphrase or with `open_network_encryption = off`; always with `owe`; with `auto`
    where `problem(interface)` finds nothing against it."""
    if config.lan_mode or not config.is_open_network:
        return False
    if config.open_network_encryption == "owe":
        return True
    return config.open_network_encryption == "auto" and problem(config.interface) is None
