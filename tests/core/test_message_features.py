from __future__ import annotations

import pytest
from hubdriver import Box

from appliance.protocol import ProtocolError, clean_emoji


def test_replies_point_at_a_message_of_the_same_conversation(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    ben, _, _ = box.join("Ben")
    room_id = box.room(ana)
    box.say(ben, "room_join", room=room_id)
    box.say(ana, "send", id="m-question", room=room_id, text="Dinner?")
    box.say(ben, "send", id="m-answer01", room=room_id, text="Yes", reply_to=1)
    assert ana.last("message")["reply_to"] == 1
    assert box.say(ben, "send", id="m-answer02", room=room_id, text="?", reply_to=9)[0]["code"] \
        == "unknown_message"
    history = box.say(ben, "sync", conv=f"room:{room_id}", after=0)[0]
    assert [m.get("reply_to") for m in history["messages"]] == [None, 1]


def test_reactions_are_stored_shown_in_history_and_removable(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, ben_id, _ = box.join("Ben")
    room_id = box.room(ana)
    conv = f"room:{room_id}"
    box.say(ben, "room_join", room=room_id)
    box.say(ana, "send", id="m-react001", room=room_id, text="Land ho!")
    box.say(ben, "react", conv=conv, seq=1, emoji="👍")
    box.say(ana, "react", conv=conv, seq=1, emoji="👍")
    box.say(ana, "react", conv=conv, seq=1, emoji="🎉")
    assert ana.last("reaction") == {"type": "reaction", "conv": conv, "seq": 1, "from": ana_id,
                                    "emoji": "🎉", "on": True}
    history = box.say(ben, "sync", conv=conv, after=0)[0]["messages"][0]
    assert history["reactions"] == {"👍": [ben_id, ana_id], "🎉": [ana_id]}
    box.say(ana, "react", conv=conv, seq=1, emoji="🎉", on=False)
    history = box.say(ben, "sync", conv=conv, after=0)[0]["messages"][0]
    assert history["reactions"] == {"👍": [ben_id, ana_id]}
    assert box.say(ana, "react", conv=conv, seq=5, emoji="👍")[0]["code"] == "unknown_message"


@pytest.mark.parametrize("emoji", ["👍", "❤️", "👍🏽", "🇳🇴", "👨‍👩‍👧"])
def test_real_emoji_are_accepted_as_reactions(emoji: str) -> None:
    assert clean_emoji(emoji) == emoji


@pytest.mark.parametrize("bad", ["a", "<img src=x>", "ok", "👍 ", "\u202e", "1", "👍" * 9])
def test_text_and_markup_are_refused_as_reactions(bad: str) -> None:
    with pytest.raises(ProtocolError):
        clean_emoji(bad)


def test_search_finds_messages_in_a_room_you_are_in(box: Box) -> None:
    ana, _, _ = box.join("Ana")
    eve, _, _ = box.join("Eve")
    room_id = box.room(ana)
    conv = f"room:{room_id}"
    for i, text in enumerate(["Anchor at dawn", "Fish for dinner", "ANCHOR up", "100% sure",
                              "under_score"]):
        box.say(ana, "send", id=f"m-search{i:02}", room=room_id, text=text)
    found = box.say(ana, "search", conv=conv, query="anchor")[0]
    assert [m["text"] for m in found["messages"]] == ["Anchor at dawn", "ANCHOR up"]
    assert [m["text"] for m in box.say(ana, "search", conv=conv, query="%")[0]["messages"]] == \
        ["100% sure"]
    assert [m["text"] for m in box.say(ana, "search", conv=conv, query="_")[0]["messages"]] == \
        ["under_score"]
    assert box.say(eve, "search", conv=conv, query="anchor")[0]["code"] == "not_member"


def test_profile_colour_and_status_line_reach_watchers(box: Box) -> None:
    ana, ana_id, _ = box.join("Ana")
    ben, _, _ = box.join("Ben")
    box.say(ben, "people", watch=True)
    reply = box.say(ana, "profile", colour="#1e88e5", status_text="  On watch  till 4 ")[0]
    assert reply["user"]["colour"] == "#1e88e5" and reply["user"]["status_text"] == "On watch till 4"
    seen = ben.users(ana_id)[-1]
    assert seen["id"] == ana_id and seen["status_text"] == "On watch till 4"
    assert box.say(ana, "profile", colour="red")[0]["code"] == "bad_request"
    assert box.say(ana, "profile", status_text="x" * 81)[0]["code"] == "bad_request"
