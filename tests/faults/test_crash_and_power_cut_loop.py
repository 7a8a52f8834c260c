"""`make faults` keeps working: the crash-and-power-cut loop finds nothing lost,
doubled or out of sequence, and its bookkeeping notices when something is."""

from __future__ import annotations

import pytest

from bench.faults.ledger import Ledger, Stored
from bench.faults.rounds import CRASH, POWER_CUT, run_variant
from bench.faults.service import PowerCutDisk


def ledger_with_three_acked() -> Ledger:
    ledger = Ledger()
    for seq, msg_id in enumerate(["m-aaaa001", "m-aaaa002", "m-aaaa003"], start=1):
        ledger.record_sent(msg_id, "u_a", "room:r_1", f"text {seq}")
        ledger.record_ack(msg_id, "room:r_1", seq)
    return ledger


def stored(*rows: tuple[int, str]) -> list[Stored]:
    return [Stored("room:r_1", seq, msg_id, "u_a", f"text {msg_id[-1]}") for seq, msg_id in rows]


def test_ledger_finds_nothing_wrong_when_every_acked_message_is_where_its_ack_said() -> None:
    ledger = ledger_with_three_acked()
    check = ledger.check(stored((1, "m-aaaa001"), (2, "m-aaaa002"), (3, "m-aaaa003")),
                         {"room:r_1": 3})
    assert check.clean() and check.stored == 3 and check.never_acked == 0


def test_ledger_counts_a_lost_acked_message_and_the_gap_it_leaves_once() -> None:
    ledger = ledger_with_three_acked()
    check = ledger.check(stored((1, "m-aaaa001"), (3, "m-aaaa003")), {"room:r_1": 3})
    assert (check.missing, check.gaps) == (1, 1)
    again = ledger.check(stored((1, "m-aaaa001"), (3, "m-aaaa003")), {"room:r_1": 3})
    assert (again.missing, again.gaps) == (0, 0)  # already reported


def test_ledger_counts_a_seq_taken_with_no_message_at_the_top_as_a_gap() -> None:
    ledger = ledger_with_three_acked()
    check = ledger.check(stored((1, "m-aaaa001"), (2, "m-aaaa002"), (3, "m-aaaa003")),
                         {"room:r_1": 4})
    assert check.gaps == 1 and check.missing == 0


def test_ledger_counts_a_message_id_stored_twice_and_a_moved_ack() -> None:
    ledger = ledger_with_three_acked()
    ledger.record_ack("m-aaaa003", "room:r_1", 4)  # a resend answered with another seq
    check = ledger.check(stored((1, "m-aaaa001"), (2, "m-aaaa002"), (3, "m-aaaa003"),
                                (4, "m-aaaa003")), {"room:r_1": 4})
    assert check.duplicates == 1 and check.missing == 1


def test_ledger_counts_what_a_phone_never_received_in_its_conversations() -> None:
    ledger = ledger_with_three_acked()
    views = {"ben": ({"room:r_1": {1: "m-aaaa001", 3: "m-aaaa003"}}, ["room:r_1"]),
             "cy": ({}, [])}
    check = ledger.check(stored((1, "m-aaaa001"), (2, "m-aaaa002"), (3, "m-aaaa003")),
                         {"room:r_1": 3}, views)
    assert check.not_delivered == 1


def assert_nothing_lost_doubled_or_skipped(variant: str) -> None:
    result = run_variant(variant, clients=4, rounds=2, seed=1)
    assert not result.skipped and not result.failed, result.failed
    assert len(result.rounds) == 2
    assert result.total("acked") > 0 and result.stored == result.total("acked")
    assert result.total("missing") == 0, result.samples
    assert result.total("duplicates") == 0, result.samples
    assert result.total("gaps") == 0, result.samples
    assert result.total("not_delivered") == 0, result.samples
    assert result.never_acked == 0
    assert result.ok()


def test_crash_loop_loses_doubles_and_skips_nothing_acknowledged() -> None:
    assert_nothing_lost_doubled_or_skipped(CRASH)


def test_power_cut_loop_loses_doubles_and_skips_nothing_acknowledged() -> None:
    reason = PowerCutDisk.unavailable()
    if reason:
        pytest.skip(f"power cut: {reason}")
    assert_nothing_lost_doubled_or_skipped(POWER_CUT)
