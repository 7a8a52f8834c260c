"""What a phone does on the hotspot, run inside the phone's network namespace.

    phone.py lease IFACE                      DHCP DISCOVER, OFFER, REQUEST, ACK; prints the ACK
    phone.py fetch DNS METHOD URL [JSON]      resolve the URL's host with DNS server DNS, then
                                              one HTTP request, redirects not followed

JSON (optional) is {"headers": {...}, "form": {...}}. Prints one JSON object.
Plain sockets and the standard library, so it needs no DHCP client package.
DNS queries and DHCP option parsing come from the provisioning tests' phone.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
import struct
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "provisioning"))

from phone_client import _dhcp_offer, dns

DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, DHCPACK, DHCPNAK = 1, 2, 3, 5, 6
MAGIC_COOKIE = 0x63825363
# Subnet mask, router, DNS, lease time, server id, captive-portal API (RFC 8910).
WANTED = bytes([1, 3, 6, 51, 54, 114])


def _message(kind: int, xid: bytes, mac: bytes, extra: bytes = b"") -> bytes:
    header = struct.pack("!BBBB4sHH4s4s4s4s16s64s128sI", 1, 1, 6, 0, xid, 0, 0x8000,
                         bytes(4), bytes(4), bytes(4), bytes(4), mac, b"", b"", MAGIC_COOKIE)
    return header + bytes([53, 1, kind]) + extra + bytes([55, len(WANTED)]) + WANTED + b"\xff"


def _kind(data: bytes) -> int | None:
    i = 240
    while i + 1 < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if data[i] == 53:
            return data[i + 2]
        i += 2 + data[i + 1]
    return None


class Declined(Exception):
    """The server answered the REQUEST with a NAK (the offered address went to
    another phone meanwhile): a client starts again from DISCOVER (RFC 2131, 3.1)."""


def _exchange(sock: socket.socket, packet: bytes, xid: bytes, want: int) -> bytes:
    for _ in range(10):
        sock.sendto(packet, ("255.255.255.255", 67))
        try:
            while True:
                data, _ = sock.recvfrom(2048)
                if data[4:8] != xid or data[0] != 2:
                    continue
                if _kind(data) == want:
                    return data
                if _kind(data) == DHCPNAK and want == DHCPACK:
                    raise Declined()
        except TimeoutError:
            continue
    raise TimeoutError(f"no DHCP message {want}")


def lease(iface: str) -> dict[str, Any]:
    mac = bytes.fromhex(Path(f"/sys/class/net/{iface}/address").read_text().strip()
                        .replace(":", ""))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        sock.bind(("0.0.0.0", 68))
        sock.settimeout(1.0)
        for attempt in range(3):
            xid = os.urandom(4)
            offer = _dhcp_offer(_exchange(sock, _message(DHCPDISCOVER, xid, mac), xid,
                                          DHCPOFFER))
            requested = socket.inet_aton(offer["yiaddr"])
            server = socket.inet_aton(offer["options"]["54"])
            extra = bytes([50, 4]) + requested + bytes([54, 4]) + server
            try:
                ack = _exchange(sock, _message(DHCPREQUEST, xid, mac, extra), xid, DHCPACK)
                break
            except Declined:
                if attempt == 2:
                    raise TimeoutError("every REQUEST was declined (NAK)") from None
    answer = _dhcp_offer(ack)
    answer["mac"] = mac.hex(":")
    return answer


def fetch(dns_server: str, method: str, url: str, extra: str = "{}") -> dict[str, Any]:
    options = json.loads(extra)
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        resolved = dns(dns_server, host.rstrip("."))  # a fully qualified name
        if not resolved.get("addresses"):
            return {"error": f"cannot resolve {host}: {resolved}"}
        address = resolved["addresses"][0]
    headers = {"Host": parts.netloc, "User-Agent": "ahoy-netns-phone", "Connection": "close",
               **options.get("headers", {})}
    body = None
    if "form" in options:
        body = urlencode(options["form"])
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(address, port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection(address, port, timeout=10)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return {
        "address": address,
        "status": response.status,
        "headers": {k.lower(): v for k, v in response.getheaders()},
        "body": data.decode("utf-8", errors="replace"),
    }


if __name__ == "__main__":
    commands = {"lease": lease, "fetch": fetch}
    try:
        result = commands[sys.argv[1]](*sys.argv[2:])
    except OSError as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))
