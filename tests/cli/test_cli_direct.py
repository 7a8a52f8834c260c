"""A direct chat without a box: offer and answer as text, then a data channel."""

from __future__ import annotations

import asyncio

import pytest
from clitestkit import Recorder, run

from appliance.terminal.conversations import ChatError
from appliance.terminal.direct import CONV, DirectChat, decode_description


def test_offer_and_answer_lines_open_a_chat_both_ways() -> None:
    async def scenario() -> None:
        ana, ben = DirectChat("Ana"), DirectChat("Ben")
        ana_seen, ben_seen = Recorder(ana), Recorder(ben)
        try:
            offer = await ana.make_offer()
            assert offer.startswith("ahoy1:") and "\n" not in offer and " " not in offer
            # A paste may arrive wrapped over several lines.
            answer = await ben.answer(offer[:40] + "\n" + offer[40:])
            await ana.take_answer(answer)
            await asyncio.gather(ana.wait_open(20), ben.wait_open(20))
            await ana_seen.wait(lambda: ana.peer_name == "Ben", what="Ben's hello")
            await ben_seen.wait(lambda: ben.peer_name == "Ana", what="Ana's hello")

            sent = ana.send_to_conv(CONV, "ahoy over the LAN")
            await ana.wait_sent(sent, 5)
            await ben_seen.wait(lambda: len(ben_seen.messages()) == 1, what="the message")
            got = ben_seen.messages()[0]
            assert (got.text, got.name) == ("ahoy over the LAN", "Ana")
            reply = ben.send_to_conv(CONV, "\x1b]0;pwned\x07 hi")
            await ben.wait_sent(reply, 5)
            await ana_seen.wait(lambda: len(ana_seen.messages()) == 1, what="the reply")
            assert ana_seen.messages()[0].text == "\x1b]0;pwned\x07 hi"
            assert ana.conv_title(CONV) == "@Ben"
            with pytest.raises(ChatError, match="no rooms"):
                await ana.join_room("r_x")
        finally:
            await ana.close()
            await ben.close()

    run(scenario(), timeout=40)


def test_a_damaged_or_wrong_paste_is_explained() -> None:
    with pytest.raises(ChatError, match="paste the whole line"):
        decode_description("v=0 o=- 1 1 IN IP4", "offer")
    with pytest.raises(ChatError, match="cut short or mistyped"):
        decode_description("ahoy1:eJzLSM3JyQcABiwCFQ", "offer")

    async def offer_given_as_answer() -> None:
        ana, ben = DirectChat("Ana"), DirectChat("Ben")
        try:
            offer = await ana.make_offer()
            with pytest.raises(ChatError, match="this is an offer, but an answer is needed"):
                await ben.take_answer(offer)
        finally:
            await ana.close()
            await ben.close()

    run(offer_given_as_answer())
