"""What a phone on the hotspot does, as a script run inside the phone's namespace.

    phone_client.py dhcp IFACE           DHCP DISCOVER; prints the OFFER
    phone_client.py dhcp_offers IFACE S  DISCOVERs for S seconds; prints who offered
    phone_client.py dns SERVER NAME      A query; prints the addresses
    phone_client.py stun SERVER PORT     STUN binding; prints the mapped address
    phone_client.py turn SERVER PORT USER PASSWORD   TURN allocate; prints the result
    phone_client.py tcp HOST PORT        TCP connect; prints whether it worked
    phone_client.py udp HOST PORT        one UDP datagram; prints the echo, if any
    phone_client.py echo PORT            TCP and UDP echo on PORT until killed

Prints one JSON object. Plain sockets and struct only, so it runs anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import struct
import sys
from typing import Any

MAGIC = 0x2112A442


def _discover(iface: str) -> tuple[socket.socket, bytes, bytes]:
    """A socket on `iface`'s DHCP client port, a DISCOVER and its transaction id."""
    mac = bytes.fromhex(open(f"/sys/class/net/{iface}/address").read().strip().replace(":", ""))
    xid = os.urandom(4)
    packet = struct.pack("!BBBB4sHH4s4s4s4s16s64s128sI", 1, 1, 6, 0, xid, 0, 0x8000,
                         bytes(4), bytes(4), bytes(4), bytes(4), mac, b"", b"", 0x63825363)
    packet += bytes([53, 1, 1, 55, 6, 1, 3, 6, 51, 54, 114, 255])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", 68))
    return sock, packet, xid


def dhcp_offers(iface: str, seconds: str) -> dict[str, Any]:
    """Every DHCP server on the link: the offers to DISCOVERs sent for `seconds`."""
    import time

    sock, packet, xid = _discover(iface)
    sock.settimeout(0.5)
    offers: list[dict[str, Any]] = []
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        sock.sendto(packet, ("255.255.255.255", 67))
        try:
            while True:
                data, _ = sock.recvfrom(2048)
                if data[4:8] == xid and data[0] == 2:
                    offers.append(_dhcp_offer(data))
        except TimeoutError:
            continue
    servers = sorted({offer["options"].get("54", "?") for offer in offers})
    return {"offers": len(offers), "servers": servers}


def dhcp(iface: str) -> dict[str, Any]:
    sock, packet, xid = _discover(iface)
    sock.settimeout(1.0)
    for _ in range(10):
        sock.sendto(packet, ("255.255.255.255", 67))
        try:
            while True:
                data, _ = sock.recvfrom(2048)
                if data[4:8] == xid and data[0] == 2:
                    return _dhcp_offer(data)
        except TimeoutError:
            continue
    return {"error": "no DHCP offer"}


def _dhcp_offer(data: bytes) -> dict[str, Any]:
    options: dict[str, str] = {}
    i = 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        code, length = data[i], data[i + 1]
        value = data[i + 2 : i + 2 + length]
        if code in (1, 3, 6, 54):
            options[str(code)] = socket.inet_ntoa(value[:4])
        elif code == 114:
            options[str(code)] = value.decode()
        else:
            options[str(code)] = value.hex()
        i += 2 + length
    return {"yiaddr": socket.inet_ntoa(data[16:20]), "options": options}


def dns(server: str, name: str) -> dict[str, Any]:
    query_id = int.from_bytes(os.urandom(2), "big")
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + b"\0\1\0\1"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    for _ in range(10):
        sock.sendto(packet, (server, 53))
        try:
            data, sender = sock.recvfrom(2048)
        except (TimeoutError, ConnectionRefusedError):
            continue
        answers = struct.unpack("!H", data[6:8])[0]
        i = 12 + len(question) + 4
        found = []
        for _ in range(answers):
            i += 2 if data[i] & 0xC0 == 0xC0 else len(question)
            rtype, _, _, length = struct.unpack("!HHIH", data[i : i + 10])
            i += 10
            if rtype == 1:
                found.append(socket.inet_ntoa(data[i : i + 4]))
            i += length
        return {"addresses": found, "from": sender[0], "rcode": data[3] & 0xF}
    return {"error": "no DNS answer"}


def _stun_attrs(data: bytes) -> dict[int, bytes]:
    attrs = {}
    i = 20
    while i + 4 <= len(data):
        kind, length = struct.unpack("!HH", data[i : i + 4])
        attrs[kind] = data[i + 4 : i + 4 + length]
        i += 4 + length + (-length % 4)
    return attrs


def _xor_address(value: bytes) -> str:
    port = struct.unpack("!H", value[2:4])[0] ^ (MAGIC >> 16)
    addr = struct.unpack("!I", value[4:8])[0] ^ MAGIC
    return f"{socket.inet_ntoa(struct.pack('!I', addr))}:{port}"


def _error_code(value: bytes) -> int:
    return (value[2] & 7) * 100 + value[3]


def _attr(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + bytes(-len(value) % 4)


def _exchange(sock: socket.socket, server: tuple[str, int], kind: int, body: bytes,
              key: bytes | None = None) -> tuple[int, dict[int, bytes]]:
    tid = os.urandom(12)
    if key is not None:
        header = struct.pack("!HHI", kind, len(body) + 24, MAGIC) + tid
        mac = hmac.new(key, header + body, hashlib.sha1).digest()
        body += _attr(0x0008, mac)
    message = struct.pack("!HHI", kind, len(body), MAGIC) + tid + body
    for _ in range(10):
        sock.sendto(message, server)
        try:
            data, _ = sock.recvfrom(2048)
        except (TimeoutError, ConnectionRefusedError):
            continue
        if data[8:20] == tid:
            return struct.unpack("!H", data[:2])[0], _stun_attrs(data)
    raise TimeoutError("no STUN answer")


def stun(server: str, port: str) -> dict[str, Any]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.5)
    kind, attrs = _exchange(sock, (server, int(port)), 0x0001, b"")
    return {"type": kind, "mapped": _xor_address(attrs[0x0020])}


def turn(server: str, port: str, user: str, password: str) -> dict[str, Any]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.5)
    where = (server, int(port))
    transport = _attr(0x0019, bytes([17, 0, 0, 0]))
    kind, attrs = _exchange(sock, where, 0x0003, transport)
    challenge = _error_code(attrs[0x0009])
    realm, nonce = attrs[0x0014], attrs[0x0015]
    key = hashlib.md5(user.encode() + b":" + realm + b":" + password.encode()).digest()
    body = _attr(0x0006, user.encode()) + _attr(0x0014, realm) + _attr(0x0015, nonce)
    kind, attrs = _exchange(sock, where, 0x0003, body + transport, key)
    result: dict[str, Any] = {"challenge": challenge, "realm": realm.decode(), "type": kind}
    if 0x0016 in attrs:
        result["relayed"] = _xor_address(attrs[0x0016])
    if 0x0009 in attrs:
        result["error"] = _error_code(attrs[0x0009])
    return result


def tcp(host: str, port: str) -> dict[str, Any]:
    try:
        with socket.create_connection((host, int(port)), timeout=3) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            return {"connected": True, "reply": conn.recv(200).decode(errors="replace")}
    except OSError as exc:
        return {"connected": False, "error": type(exc).__name__}


def udp(host: str, port: str) -> dict[str, Any]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        for _ in range(4):
            try:
                sock.sendto(b"ping", (host, int(port)))
                data, source = sock.recvfrom(200)
                return {"echoed": True, "reply": data.decode(errors="replace"),
                        "from": source[0]}
            except OSError as exc:
                error = type(exc).__name__
        return {"echoed": False, "error": error}


def echo(port: str) -> dict[str, Any]:
    """Answer TCP and UDP on `port` with what the caller's address is, until killed."""
    import threading

    def serve_udp() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("0.0.0.0", int(port)))
            while True:
                _, source = sock.recvfrom(200)
                sock.sendto(f"echo from {source[0]}".encode(), source)

    threading.Thread(target=serve_udp, daemon=True).start()
    with socket.create_server(("0.0.0.0", int(port))) as server:
        while True:
            conn, source = server.accept()
            with conn:
                conn.sendall(f"echo from {source[0]}".encode())


if __name__ == "__main__":
    commands = {"dhcp": dhcp, "dhcp_offers": dhcp_offers, "dns": dns, "stun": stun, "turn": turn, "tcp": tcp, "udp": udp,
                "echo": echo}
    print(json.dumps(commands[sys.argv[1]](*sys.argv[2:])))
