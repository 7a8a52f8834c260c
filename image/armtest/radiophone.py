"""The radio half of `make arm64-boot-test`, run inside the booted arm64 image.

    radiophone.py            load mac80211_hwsim (two radios), wait for the box's hotspot on
                             wlan0, put wlan1 in namespace `phone` and run the phone there
    radiophone.py phone BOX? (inside the namespace) DHCP, captive portal, chat

Only what the release image has: its own Python (/opt/ahoy/venv, with simple-websocket),
wpa_supplicant and iw. The phone's DHCP client is the few lines below (the image has none).
Prints one line per step, `AHOY-R {json}`; the last has "result".
"""

from __future__ import annotations

import faulthandler
import http.client
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

MARK = "AHOY-R "
NETNS = "phone"
PHONE_SECONDS = 600  # the phone's own bound, all steps together
PYTHON = "/opt/ahoy/venv/bin/python"


def uptime() -> float:
    return round(float(Path("/proc/uptime").read_text().split()[0]), 1)


def emit(**fields: Any) -> None:
    print(MARK + json.dumps({"t": uptime(), **fields}), flush=True)


def run(*argv: str, netns: str | None = None, check: bool = True) -> str:
    if netns:
        argv = ("ip", "netns", "exec", netns, *argv)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stdout}{done.stderr}".strip())
    return done.stdout + done.stderr


def wait(what: str, test: Any, timeout: float) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = test()
        if value:
            return value
        time.sleep(1)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


# --- the box's side -----------------------------------------------------------

def hotspot_ssid() -> str:
    info = subprocess.run(["iw", "dev", "wlan0", "info"], capture_output=True, text=True).stdout
    found = re.search(r"ssid (.+)", info)
    return found.group(1).strip() if "type AP" in info and found else ""


def box_side() -> dict[str, Any]:
    if not Path("/sys/module/mac80211_hwsim").exists():
        run("modprobe", "mac80211_hwsim", "radios=2")
    emit(step="radios", interfaces=sorted(os.listdir("/sys/class/net")))
    # wlan0 appearing has provisioning apply again (udev), which starts the hotspot.
    ssid = wait("the hotspot on wlan0", hotspot_ssid, 900)
    emit(step="hotspot_up", ssid=ssid)
    phy = wait("wlan1", lambda: Path("/sys/class/net/wlan1/phy80211/name").exists()
               and Path("/sys/class/net/wlan1/phy80211/name").read_text().strip(), 60)
    run("ip", "netns", "add", NETNS)
    run("iw", "phy", phy, "set", "netns", "name", NETNS)
    run("ip", "link", "set", "lo", "up", netns=NETNS)
    run("ip", "link", "set", "wlan1", "up", netns=NETNS)
    conf = Path("/run/phone-wpa.conf")
    conf.write_text("ctrl_interface=/run/wpa_supplicant-phone\n"
                    f'network={{\n  ssid="{ssid}"\n  key_mgmt=NONE\n}}\n')
    run("wpa_supplicant", "-B", "-i", "wlan1", "-c", str(conf), "-f", "/run/phone-wpa.log",
        netns=NETNS)

    def joined() -> bool:
        out = run("wpa_cli", "-p", "/run/wpa_supplicant-phone", "-i", "wlan1", "status",
                  netns=NETNS, check=False)
        return "wpa_state=COMPLETED" in out

    wait("the phone joining the hotspot", joined, 300)
    emit(step="phone_joined")
    # The phone's lines go to a file, shown whatever happens (a stuck phone dumps its
    # threads' stacks there before its own bound, PHONE_SECONDS).
    out = Path("/run/phone.out")
    with out.open("w") as sink:
        try:
            done = subprocess.run(["ip", "netns", "exec", NETNS, PYTHON, __file__, "phone"],
                                  stdout=sink, stderr=subprocess.STDOUT, text=True,
                                  timeout=PHONE_SECONDS + 60)
            code: int | str = done.returncode
        except subprocess.TimeoutExpired:
            code = "timed out"
    lines = out.read_text(errors="replace").splitlines()
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()
    marked = [line for line in lines if line.startswith(MARK)]
    if code != 0 or not marked:
        raise RuntimeError(f"the phone failed ({code}): {' | '.join(lines[-6:])[-800:]}")
    result = json.loads(marked[-1][len(MARK):])
    if result.get("result") != "ok":
        raise RuntimeError(f"the phone failed: {result.get('error')}")
    return {"ssid": ssid, **{k: v for k, v in result.items() if k not in ("t", "result")}}


# --- the phone's side (in its namespace) --------------------------------------

def dhcp(iface: str, timeout: float = 120) -> dict[str, str]:
    """DISCOVER, OFFER, REQUEST, ACK (RFC 2131), broadcast, on `iface`."""
    mac = bytes.fromhex(Path(f"/sys/class/net/{iface}/address").read_text().strip()
                        .replace(":", ""))
    xid = random.getrandbits(32)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    s.bind(("0.0.0.0", 68))
    s.settimeout(3)

    def packet(kind: int, options: bytes) -> bytes:
        head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                           bytes(4), bytes(4), bytes(4), bytes(4), mac, b"", b"")
        wanted = b"\x37\x03\x01\x03\x06"  # asks for the mask, router and DNS server
        return head + b"\x63\x82\x53\x63" + bytes([53, 1, kind]) + options + wanted + b"\xff"

    def options(data: bytes) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        i = 240
        while i < len(data) and data[i] != 255:
            if data[i] == 0:
                i += 1
                continue
            found[data[i]] = data[i + 2:i + 2 + data[i + 1]]
            i += 2 + data[i + 1]
        return found

    def exchange(message: bytes, want: int) -> tuple[bytes, dict[int, bytes]]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s.sendto(message, ("255.255.255.255", 67))
            try:
                while True:
                    data, _ = s.recvfrom(2048)
                    if len(data) > 240 and struct.unpack("!I", data[4:8])[0] == xid:
                        opts = options(data)
                        if opts.get(53) == bytes([want]):
                            return data, opts
            except TimeoutError:
                continue
        raise RuntimeError(f"no DHCP answer ({want}) within {timeout:.0f} s")

    offer, opts = exchange(packet(1, b""), 2)
    address = offer[16:20]
    server = opts[54]
    _, ack = exchange(packet(3, b"\x32\x04" + address + b"\x36\x04" + server), 5)
    s.close()
    mask = ack.get(1, bytes([255, 255, 255, 0]))
    prefix = bin(int.from_bytes(mask, "big")).count("1")
    return {"ip": socket.inet_ntoa(address), "prefix": str(prefix),
            "router": socket.inet_ntoa(ack.get(3, server)[:4]),
            "dns": socket.inet_ntoa(ack.get(6, server)[:4])}


def get(host: str, path: str, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, 80, timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def phone() -> dict[str, Any]:
    lease = dhcp("wlan1")
    run("ip", "addr", "add", f"{lease['ip']}/{lease['prefix']}", "dev", "wlan1")
    run("ip", "route", "add", "default", "via", lease["router"])
    emit(step="lease", **lease)
    box = lease["router"]
    # The DNS server DHCP named answers every name with the box (captive portal).
    resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    resolver.settimeout(10)
    query = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + b"".join(
        bytes([len(p)]) + p.encode() for p in "connectivitycheck.gstatic.com".split(".")
    ) + b"\x00\x00\x01\x00\x01"
    resolver.sendto(query, (lease["dns"], 53))
    answer = resolver.recv(512)
    probe_address = socket.inet_ntoa(answer[-4:])
    before, headers, _ = get(probe_address, "/generate_204",
                              headers={"Host": "connectivitycheck.gstatic.com"})
    _, _, page = get(box, "/portal")
    nonce = re.search(rb'name="nonce" value="([^"]*)"', page)
    accepted, _, _ = get(box, "/portal/continue", method="POST",
                          body=b"nonce=" + (nonce.group(1) if nonce else b""),
                          headers={"Origin": f"http://{box}",
                                   "Content-Type": "application/x-www-form-urlencoded"})
    after, _, _ = get(probe_address, "/generate_204",
                       headers={"Host": "connectivitycheck.gstatic.com"})
    emit(step="portal", probe_resolves_to=probe_address, probe_before=before,
         redirect=headers.get("location", ""), continue_status=accepted, probe_after=after)

    import simple_websocket

    ws = simple_websocket.Client.connect(f"ws://{box}/ws", headers={"Origin": f"http://{box}"})

    def expect(kind: str, timeout: float = 120) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            raw = ws.receive(timeout=max(0.1, end - time.monotonic()))
            if raw is None:
                continue
            message = json.loads(raw)
            if message.get("type") == kind:
                return dict(message)
            if message.get("type") == "error":
                raise RuntimeError(f"the box said: {message}")
        raise RuntimeError(f"no {kind} within {timeout:.0f} s")

    try:
        ws.send(json.dumps({"type": "hello", "name": "Arm Phone"}))
        welcome = expect("welcome")
        room = welcome.get("default_room")
        text = f"Hello from the arm64 box's hotspot {uuid.uuid4().hex[:8]}"
        ws.send(json.dumps({"type": "send", "id": f"m-{uuid.uuid4().hex[:12]}", "room": room,
                            "text": text}))
        ack = expect("ack")
    finally:
        ws.close()
    # Someone else on the hotspot reads it back from the box's store.
    ws = simple_websocket.Client.connect(f"ws://{box}/ws", headers={"Origin": f"http://{box}"})
    try:
        ws.send(json.dumps({"type": "hello", "name": "Arm Reader"}))
        expect("welcome")
        ws.send(json.dumps({"type": "sync", "conv": f"room:{room}", "after": 0}))
        history = expect("history")
    finally:
        ws.close()
    texts = [m.get("text") for m in history.get("messages", [])]
    chat = {"room": room, "acked_seq": ack.get("seq"), "read_back": text in texts}
    emit(step="chat", **chat)
    return {"lease": lease["ip"], "portal": [before, accepted, after], **chat}


def main() -> int:
    try:
        if sys.argv[1:2] == ["phone"]:
            faulthandler.dump_traceback_later(PHONE_SECONDS, exit=True)
            result = phone()
        else:
            result = box_side()
    except Exception as e:  # reported to the host, which judges
        emit(result="failed", error=f"{type(e).__name__}: {e}")
        return 1
    emit(result="ok", **result)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # not held by a WebSocket client's thread
