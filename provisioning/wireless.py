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
