"""The faults loop's bookkeeping: what the phones sent and saw acknowledged,
compared with what the box has stored after each fault.

Plain values in, counts out: no sockets, no files. A problem is counted once,
in the check that first finds it; later checks count only new ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sent:
    id: str
    sender: str  # user id
    conv: str
    text: str
    round: int


@dataclass(frozen=True)
class Ack:
    conv: str
    seq: int
    round: int


@dataclass(frozen=True)
class Stored:
    """One message as the box gives it back (`sync`)."""

    conv: str
    seq: int
    id: str
    sender: str
    text: str


@dataclass
class Check:
    """New problems found by one comparison, and the state of the whole run."""

    missing: int = 0  # acknowledged, but not stored where the ack said (or changed)
    duplicates: int = 0  # extra copies of one (sender, message id)
    gaps: int = 0  # sequence numbers with no message, below a conversation's last
    not_delivered: int = 0  # stored in a phone's conversation, never seen by that phone
    stored: int = 0
    never_acked: int = 0  # sent and still without an ack
    samples: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return not (self.missing or self.duplicates or self.gaps or self.not_delivered)


# What a phone has seen, per conversation: seq -> message id.
View = Mapping[str, Mapping[int, str]]

SAMPLES = 5


class Ledger:
    def __init__(self) -> None:
        self.round = 0
        self.sent: dict[str, Sent] = {}
        self.acks: dict[str, Ack] = {}
        # A later ack for the same id that names another place: the box moved it.
        self.moved: dict[str, Ack] = {}
        self._reported: set[tuple[object, ...]] = set()

    def record_sent(self, msg_id: str, sender: str, conv: str, text: str) -> None:
        """A new message; sending the same id again (a resend) changes nothing."""
        if msg_id not in self.sent:
            self.sent[msg_id] = Sent(msg_id, sender, conv, text, self.round)

    def record_ack(self, msg_id: str, conv: str, seq: int) -> None:
        first = self.acks.get(msg_id)
        if first is None:
            self.acks[msg_id] = Ack(conv, seq, self.round)
        elif (first.conv, first.seq) != (conv, seq):
            self.moved[msg_id] = Ack(conv, seq, self.round)

    def unacked(self) -> list[str]:
        return [i for i in self.sent if i not in self.acks]

    def sent_in(self, round_: int) -> int:
        return sum(1 for s in self.sent.values() if s.round == round_)

    def acked_in(self, round_: int) -> int:
        return sum(1 for a in self.acks.values() if a.round == round_)

    def _new(self, key: tuple[object, ...]) -> bool:
        if key in self._reported:
            return False
        self._reported.add(key)
        return True

    def check(self, stored: Iterable[Stored], last_seqs: Mapping[str, int],
              views: Mapping[str, tuple[View, Iterable[str]]] | None = None) -> Check:
        """Compare every acknowledged message with the box's messages.

        `last_seqs` is each conversation's last sequence number as the box
        reports it (a seq taken with no message at the top is a gap too);
        `views` maps a phone's name to what it has seen and the conversations
        it belongs to.
        """
        out = Check()
        at: dict[tuple[str, int], Stored] = {}
        copies: Counter[tuple[str, str]] = Counter()
        by_conv: dict[str, list[Stored]] = {}
        for m in stored:
            at[(m.conv, m.seq)] = m
            copies[(m.sender, m.id)] += 1
            by_conv.setdefault(m.conv, []).append(m)
        out.stored = len(at)

        for msg_id, ack in self.acks.items():
            sent = self.sent[msg_id]
            there = at.get((ack.conv, ack.seq))
            intact = (there is not None and there.id == msg_id and there.sender == sent.sender
                      and there.text == sent.text and msg_id not in self.moved)
            if not intact and self._new(("missing", msg_id)):
                out.missing += 1
                self._sample(out, f"acknowledged {msg_id} at {ack.conv} #{ack.seq}: "
                                  f"{'holds ' + there.id if there else 'nothing there'}")

        for (sender, msg_id), n in copies.items():
            if n > 1 and self._new(("duplicate", sender, msg_id)):
                out.duplicates += n - 1
                self._sample(out, f"{msg_id} from {sender} stored {n} times")

        for conv in set(by_conv) | set(last_seqs):
            seqs = {m.seq for m in by_conv.get(conv, [])}
            top = max([last_seqs.get(conv, 0), *seqs])
            for seq in range(1, top + 1):
                if seq not in seqs and self._new(("gap", conv, seq)):
                    out.gaps += 1
                    self._sample(out, f"{conv} has no #{seq} (last is #{top})")

        for phone, (view, convs) in (views or {}).items():
            for conv in convs:
                seen = view.get(conv, {})
                for m in by_conv.get(conv, []):
                    if seen.get(m.seq) != m.id and self._new(("undelivered", phone, conv, m.seq)):
                        out.not_delivered += 1
                        self._sample(out, f"{phone} never got {conv} #{m.seq} ({m.id})")

        out.never_acked = len(self.sent) - len(self.acks)
        return out

    @staticmethod
    def _sample(out: Check, text: str) -> None:
        if len(out.samples) < SAMPLES:
            out.samples.append(text)
