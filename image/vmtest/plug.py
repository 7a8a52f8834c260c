#!/usr/bin/env python3
"""`make plug-test`: pull the VM's plug again and again, at random moments, and judge each boot.

The amd64 test image (make -C image vm-image) on a fresh disk. Kill 1 falls while the first
boot's provisioning makes the secrets and certificates; the next boot (still a first boot
for whatever was not finished) runs the whole first-boot check (phones, chat, a call) and
a burst of messages, killed after a random number of acks. Every later boot must bring the
hotspot back, let a phone join and show every message acknowledged so far, and is then
killed at a random moment of one of: the boot itself, a burst of messages, settings
changes from the admin page's path (box_name, written into ahoy.txt), fake-hwclock's save.
After every kill the host checks, on the disk itself: the data partition is clean once its
journal is replayed (e2fsck on a copy) and ahoy.txt on the boot partition is whole (it
parses, and box_name is one the box was asked to set). Prints a table of kills and results.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from run import VM, Boot, data_clean_after_replay, read_box_config, start_boot, wait_for  # noqa: E402

from provisioning.config import ConfigError, parse_config  # noqa: E402

ACTIONS = ("boot", "burst", "settings", "clock")


def count_until(boot: Boot, name: str, want: int, ids: set[str] | None = None) -> int:
    """Wait for `want` events called `name` (ack ids go into `ids`); how many came."""
    seen = 0
    end = time.monotonic() + 300
    while seen < want and time.monotonic() < end and boot.proc.poll() is None:
        for event in boot.poll():
            if event["event"] == name:
                seen += 1
                if ids is not None:
                    ids.add(event["id"])
        time.sleep(0.1)
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--memory", default="1536M")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)
    print(f"plug test: {args.kills} kills, seed {seed} (--seed {seed} repeats the moments)")
    image = VM / "ahoy-vmtest-amd64.img"
    if not image.exists():
        print(f"{image} is missing: build it with `make -C image vm-image`", file=sys.stderr)
        return 2
    run_dir = VM / "plug"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    disk = run_dir / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)
    subprocess.run(["truncate", "-s", "+256M", str(disk)], check=True)
    scratch = Path(tempfile.mkdtemp(prefix="ahoy-plug-", dir=run_dir))

    acked: set[str] = set()
    names: set[str] = {"ahoy"}
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for n in range(1, args.kills + 2):
        last = n == args.kills + 1
        phase: int | str
        plug: str | None
        if n == 1:
            moment, phase, plug = "first-boot provisioning", 1, None
        elif n == 2:
            moment, phase, plug = "burst (first-boot checks before)", 1, None
        elif last:
            moment, phase, plug = "(final boot, not killed)", "plug", "none"
        else:
            plug = rng.choice(ACTIONS)
            moment, phase = plug, "plug"
        boot = start_boot(n, disk, run_dir, args.memory, phase=phase,
                          extra=f" ahoy.plug={plug}" if plug else "")
        row: dict[str, Any] = {"n": n, "moment": moment, "problems": []}

        came_up = True
        if n == 1:
            # Kill while provisioning runs: a random moment after it has started.
            console = boot.console
            end = time.monotonic() + args.timeout
            while time.monotonic() < end and boot.proc.poll() is None:
                text = console.read_text(errors="replace") if console.exists() else ""
                if "Ahoy: apply ahoy.txt" in text or "ahoy-provision" in text:
                    break
                time.sleep(0.2)
            delay = rng.uniform(0, 20)
            time.sleep(delay)
            row["detail"] = f"{delay:.1f} s after provisioning started"
        else:
            if phase != "plug" or plug != "boot":
                came_up = wait_for(boot, lambda e: e["event"] in ("busy", "burst_start", "done"),
                                   args.timeout)
            # A boot killed on purpose before it came up has no history to judge; the
            # next boot's must still hold every acknowledged message.
            if n > 2 and came_up and plug != "boot":
                history = boot.first("history")
                if history is None:
                    row["problems"].append("no history")
                else:
                    lost = acked - set(history["ids"])
                    row["history"] = f"{len(acked) - len(lost)}/{len(acked)}"
                    if lost:
                        row["problems"].append(f"{len(lost)} acked messages lost")
            row["problems"] += [e.get("name") or e.get("error") for e in boot.events
                                if e["event"] == "fail"
                                or (e["event"] == "check" and not e["ok"])]
            if not came_up:
                row["problems"].append("did not come up")
            if last:
                boot.pull_the_plug()
            elif plug == "boot":
                # A random moment of the boot: before the hotspot is up (seen in the VM).
                delay = rng.uniform(5, 60)
                wait_for(boot, lambda e: e["event"] == "hotspot_up", delay)
                row["detail"] = f"{time.monotonic() - boot.started:.1f} s after qemu started"
            elif plug == "burst" or n == 2:
                got = count_until(boot, "ack", rng.randint(1, 60), acked)
                row["detail"] = f"after {got} acks"
            elif plug == "settings":
                want = rng.randint(1, 4)
                names.update(f"plug-{i}" for i in range(1, want + 2))
                got = count_until(boot, "settings_applied", want)
                delay = rng.uniform(0, 3)
                time.sleep(delay)
                row["detail"] = f"{delay:.1f} s after change {got} was applied"
            elif plug == "clock":
                got = count_until(boot, "clock_saved", rng.randint(1, 20))
                row["detail"] = f"during save {got + 1}"
        boot.poll()
        if not last and not boot.pull_the_plug():
            row["problems"].append("the VM stopped on its own")
        clean, detail = data_clean_after_replay(disk, scratch)
        row["fsck"] = "clean" if clean else "NOT CLEAN"
        if not clean:
            row["problems"].append(f"data partition: {detail}")
        box_file = read_box_config(disk, scratch / "ahoy.txt")
        try:
            config = parse_config(box_file or "")
            row["ahoy.txt"] = "ok" if box_file and config.box_name in names else "WRONG"
            if row["ahoy.txt"] != "ok":
                row["problems"].append(f"ahoy.txt box_name {config.box_name!r}")
        except ConfigError as exc:
            row["ahoy.txt"] = "BROKEN"
            row["problems"].append(f"ahoy.txt: {exc}")
        rows.append(row)
        print(f"  kill {n}: {moment} {row.get('detail', '')}: fsck {row['fsck']}, "
              f"ahoy.txt {row['ahoy.txt']}, history {row.get('history', '-')}"
              + (f"; PROBLEMS {row['problems']}" if row["problems"] else ""), flush=True)

    shutil.rmtree(scratch, ignore_errors=True)
    print(f"\n{'#':>3}  {'pulled during':34s} {'when':34s} {'next boot: acked msgs':22s} "
          f"{'fsck /data':11s} {'ahoy.txt':8s} result")
    for i, row in enumerate(rows):
        after = rows[i + 1] if i + 1 < len(rows) else None
        back = after.get("history", "-") if after else "-"
        ok = not row["problems"] and (after is None or not after["problems"])
        print(f"{row['n']:>3}  {row['moment'][:34]:34s} {row.get('detail', '')[:34]:34s} "
              f"{back:22s} {row['fsck']:11s} {row['ahoy.txt']:8s} "
              f"{'ok' if ok else 'FAIL'}")
    problems = [f"boot {r['n']}: {p}" for r in rows for p in r["problems"]]
    print(f"\nwhole plug test: {time.monotonic() - started:.0f} s, seed {seed}, "
          f"{len(acked)} messages acknowledged in all")
    if problems:
        print("plug test FAILED:\n" + "\n".join(f"  - {p}" for p in problems))
        return 1
    print("plug test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
