"""`python -m bench.faults`: the crash-and-power-cut loop, printed as tables.

    python -m bench.faults                         20 phones, 10 rounds, both variants
    python -m bench.faults --clients 4 --rounds 2  a quick run
    python -m bench.faults --only crash --seed 7   one variant, a repeatable schedule

Exit status 0 when nothing acknowledged was lost or doubled and no
conversation has a gap, 1 otherwise. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import asdict
from pathlib import Path

from ..__main__ import machine, table
from .rounds import CRASH, POWER_CUT, VARIANTS, Result, run_variant


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def report(result: Result) -> str:
    title = f"### {VARIANTS[result.variant]}: {result.clients} phones"
    if result.skipped:
        return f"{title}\n\nskipped: {result.skipped}"
    rows = []
    for r in result.rounds:
        c = r.check
        rows.append([r.number, r.fault, f"{r.at_s:.1f}", r.sent, r.acked, r.in_flight,
                     r.stored_unacked, r.resent, c.missing, c.duplicates, c.gaps,
                     c.not_delivered, f"{r.back_s:.1f}", r.note])
    rows.append(["all", "", "", result.total("sent"), result.total("acked"),
                 result.total("in_flight"), result.total("stored_unacked"),
                 result.total("resent"), result.total("missing"), result.total("duplicates"),
                 result.total("gaps"), result.total("not_delivered"), "", ""])
    if not any(r.note for r in result.rounds):
        rows = [row[:-1] for row in rows]
    headers = ["round", "fault", "at s", "sent", "acked", "unacked at fault",
               "stored unacked", "resent", "acked missing", "dup", "gaps", "not delivered",
               "back s", "disk"][:len(rows[0])]
    text = f"{title}\n\n{table(headers, rows)}\n\n"
    text += (f"{result.stored} messages stored in the end; {result.never_acked} never "
             f"acknowledged; {result.seconds:.0f} s.")
    if result.method:
        text += (f" Power cut by {result.method}: nothing more reaches the disk, unwritten "
                 "data is lost; a disk that drops writes it already reported done is not "
                 "simulated.")
    if result.errors:
        text += " Errors from the box: " + ", ".join(
            f"{code} {n}" for code, n in sorted(result.errors.items())) + "."
    if result.failed:
        text += f"\n\nThe loop stopped early: {result.failed}"
    if result.samples:
        text += "\n\nFirst problems found:\n" + "\n".join(f"- {s}" for s in result.samples[:10])
    return text


def verdict(results: list[Result]) -> str:
    ran = [r for r in results if not r.skipped]
    faults = ", ".join(f"{len(r.rounds)} x {VARIANTS[r.variant]}" for r in ran) or "no faults"
    acked = sum(r.total("acked") for r in ran)
    skipped = "".join(f" ({VARIANTS[r.variant]} skipped: {r.skipped})"
                      for r in results if r.skipped)
    if all(r.ok() for r in results):
        return (f"Verdict: PASS: {acked} messages acknowledged over {faults}; none missing, "
                f"none stored twice, no gaps, every phone caught up.{skipped}")
    problems = []
    for name, words in [("missing", "acknowledged messages missing"),
                        ("duplicates", "duplicates"), ("gaps", "gaps"),
                        ("not_delivered", "messages a phone never received")]:
        n = sum(r.total(name) for r in ran)
        if n:
            problems.append(f"{n} {words}")
    never = sum(r.never_acked for r in ran)
    if never:
        problems.append(f"{never} messages never acknowledged despite resends")
    problems += [f"{VARIANTS[r.variant]} loop stopped early" for r in ran if r.failed]
    return f"Verdict: FAIL: {'; '.join(problems)} (of {acked} acknowledged over {faults}).{skipped}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20, help="phones (default 20)")
    parser.add_argument("--rounds", type=int, default=10, help="faults per variant (default 10)")
    parser.add_argument("--only", default=f"{CRASH},{POWER_CUT}",
                        help=f"variants, comma-separated (default: {CRASH},{POWER_CUT})")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="messages a second per phone (default 10; the box allows 20)")
    parser.add_argument("--window", type=int, default=16,
                        help="unacknowledged messages a phone may have out (default 16)")
    parser.add_argument("--fault-after", default="0.5,3",
                        help="the fault comes at a random moment this many seconds into "
                             "each round's chat (default 0.5,3)")
    parser.add_argument("--seed", type=int, default=None, help="repeat a schedule")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    args = parser.parse_args()
    variants = [v for v in args.only.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}; pick from {', '.join(VARIANTS)}")
    if args.clients < 2 or args.rounds < 1:
        parser.error("at least 2 phones and 1 round")
    low, high = (float(x) for x in args.fault_after.split(","))
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    results = []
    for variant in variants:
        results.append(run_variant(variant, args.clients, args.rounds, seed, args.rate,
                                   args.window, (low, high), log))
    parts = [f"## Ahoy faults: crash and power-cut loop\n\nMachine: {machine()}\n"
             f"Seed {seed}; {args.rate:g} messages a second per phone, at most {args.window} "
             f"unacknowledged; fault {low:g}-{high:g} s into each round."]
    parts += [report(r) for r in results]
    parts.append(verdict(results))
    print("\n\n".join(parts))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1, default=str))
    return 0 if all(r.ok() for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
