"""`python -m appliance.cli --send`: one message from a script, then exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ahoytest import REPO, AhoyServer, free_port, unique


def cli(*args: str, config: Path, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(config))
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_send_to_a_room_and_to_a_person_then_exit(ahoy_server: AhoyServer, ws_client,
                                                  tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ben_name = unique("Ben")
    ben = ws_client(ben_name)
    room_name = unique("Deck")
    room = ben.request("room_create", "room", name=room_name)["room"]["id"]
    name = unique("Script")
    config = tmp_path / "config"

    done = cli("--box", ahoy_server.http_url, "--name", name, "--send", "build finished",
               "--room", room_name, config=config)
    assert done.returncode == 0, done.stderr
    assert f"sent to #{room_name}" in done.stdout
    got = ben.expect("message", text="build finished")
    assert got["conv"] == f"room:{room}" and got["name"] == name

    # The second run is the same person (the token was kept), writing one to one.
    done = cli("--box", ahoy_server.http_url, "--send", "and tested", "--to", ben_name,
               config=config)
    assert done.returncode == 0, done.stderr
    dm = ben.expect("message", text="and tested")
    assert dm["from"] == got["from"] and dm["conv"].startswith("dm:")
    saved = config / "ahoy" / f"127.0.0.1-{ahoy_server.http_port}.json"
    assert saved.exists() and oct(saved.stat().st_mode & 0o777) == "0o600"


def test_send_explains_what_went_wrong(ahoy_server: AhoyServer, ws_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    taken = unique("Taken")
    ws_client(taken)
    box = ahoy_server.http_url

    no_room = cli("--box", box, "--name", unique("S"), "--send", "x", "--room", "Nowhere-xyz",
                  config=tmp_path / "a")
    assert no_room.returncode == 1
    assert "there is no room called 'Nowhere-xyz'" in no_room.stderr
    assert "Traceback" not in no_room.stderr

    nobody = cli("--box", box, "--name", unique("S"), "--send", "x", "--to", "Nobody-xyz",
                 config=tmp_path / "b")
    assert nobody.returncode == 1 and "nobody called 'Nobody-xyz' is online" in nobody.stderr

    clash = cli("--box", box, "--name", taken, "--send", "x", "--to", taken,
                config=tmp_path / "c")
    assert clash.returncode == 1 and "already called" in clash.stderr

    lonely = cli("--box", box, "--send", "x", "--room", "Deck", config=tmp_path / "d")
    assert lonely.returncode == 2 and "give --name" in lonely.stderr

    no_target = cli("--box", box, "--name", "X", "--send", "x", config=tmp_path / "e")
    assert no_target.returncode == 2 and "--send needs --room NAME or --to NAME" in no_target.stderr

    away = cli("--box", f"http://127.0.0.1:{free_port()}", "--name", "X", "--send", "x",
               "--room", "Deck", "--timeout", "1", config=tmp_path / "f")
    assert away.returncode == 1 and "cannot reach the box at 127.0.0.1:" in away.stderr
    assert "connection refused" in away.stderr

    bad = cli("--box", "ftp://box", "--name", "X", "--send", "x", "--room", "Deck",
              config=tmp_path / "g")
    assert bad.returncode == 2 and "http://10.42.0.1" in bad.stderr
