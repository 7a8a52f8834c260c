"""`python -m appliance.terminal --send`: one message from a script, then exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ahoytest import REPO, AhoyServer, free_port, unique

from appliance.terminal.command import main


def cli(*args: str, config: Path, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(config))
    return subprocess.run([sys.executable, "-m", "appliance.terminal", *args], cwd=REPO, env=env,
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


def test_send_explains_what_went_wrong(ahoy_server: AhoyServer, ws_client, tmp_path: Path,
                                      monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    taken = unique("Taken")
    ws_client(taken)
    box = ahoy_server.http_url
    cases = {
        "no_room": ("--box", box, "--name", unique("S"), "--send", "x", "--room", "Nowhere-xyz"),
        "nobody": ("--box", box, "--name", unique("S"), "--send", "x", "--to", "Nobody-xyz"),
        "clash": ("--box", box, "--name", taken, "--send", "x", "--to", taken),
        "lonely": ("--box", box, "--send", "x", "--room", "Deck"),
        "no_target": ("--box", box, "--name", "X", "--send", "x"),
        "away": ("--box", f"http://127.0.0.1:{free_port()}", "--name", "X", "--send", "x",
                 "--room", "Deck", "--timeout", "1"),
        "bad": ("--box", "ftp://box", "--name", "X", "--send", "x", "--room", "Deck"),
        "untrusted": ("--box", ahoy_server.https_url, "--name", unique("S"), "--send", "x",
                      "--room", "Deck", "--timeout", "2"),
        "insecure": ("--box", ahoy_server.https_url, "--insecure", "--name", unique("S"),
                     "--send", "over TLS", "--to", taken),
    }
    done = {}
    for key, args in cases.items():  # in this process: the same code as the command, faster
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / key))
        code = main(list(args))
        done[key] = (code, capsys.readouterr().err)

    assert done["no_room"] == (1, "ahoy: there is no room called 'Nowhere-xyz'; /rooms lists them\n")
    assert done["nobody"][0] == 1 and "nobody called 'Nobody-xyz' is online" in done["nobody"][1]
    assert done["clash"][0] == 1 and "already called" in done["clash"][1]
    assert done["lonely"][0] == 2 and "give --name" in done["lonely"][1]
    assert done["no_target"][0] == 2
    assert "--send needs --room NAME or --to NAME" in done["no_target"][1]
    assert done["away"][0] == 1 and "cannot reach the box at 127.0.0.1:" in done["away"][1]
    assert "connection refused" in done["away"][1]
    assert done["bad"][0] == 2 and "http://10.42.0.1" in done["bad"][1]
    assert done["untrusted"][0] == 1 and "certificate is not trusted" in done["untrusted"][1]
    assert "--insecure" in done["untrusted"][1]
    assert done["insecure"] == (0, "")
