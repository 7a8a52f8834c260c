"""Each box's own nats-server: its rendered config, run by the real nats-server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sitetest import NatsBox, run

from provisioning import render, site
from provisioning.apply import SITE_SERVICE, apply_config
from provisioning.config import BoxConfig


@pytest.fixture
def boxes(tmp_path: Path) -> Iterator[list[NatsBox]]:
    made: list[NatsBox] = []
    yield made
    for box in made:
        box.stop()


def test_the_rendered_config_passes_nats_servers_own_check(tmp_path: Path) -> None:
    box = NatsBox(tmp_path / "a")
    checked = subprocess.run(["nats-server", "-c", str(box.paths.nats_config), "-t"],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_box_of_the_site_gets_jetstream_on_the_others_server(
    tmp_path: Path, boxes: list[NatsBox]
) -> None:
    a, b = NatsBox(tmp_path / "a"), NatsBox(tmp_path / "b")
    boxes += [a.start(), b]

    async def use() -> tuple[str, int]:
        nc = await b.connect_to(a)
        js = nc.jetstream()
        await js.add_stream(name="PROBE", subjects=["probe.>"])
        ack = await js.publish("probe.x", b"hello", headers={"Nats-Msg-Id": "m1"})
        again = await js.publish("probe.x", b"hello", headers={"Nats-Msg-Id": "m1"})
        assert again.duplicate and again.seq == ack.seq
        name = nc._server_info["server_name"]
        await nc.close()
        return name, ack.seq

    name, seq = run(use())
    assert name == f"mv-hope-{site.box_id(a.data_dir)}"
    assert seq == 1


@pytest.mark.parametrize("other", [
    {"secret": "a different secret, long enough"},
    {"site_name": "another-site"},
])
def test_a_box_with_another_secret_or_site_is_refused(
    tmp_path: Path, boxes: list[NatsBox], other: dict[str, str]
) -> None:
    a = NatsBox(tmp_path / "a")
    stranger = NatsBox(tmp_path / "stranger", **other)  # type: ignore[arg-type]
    boxes.append(a.start())

    async def attempt() -> None:
        nc = await stranger.connect_to(a)
        await nc.close()

    with pytest.raises(Exception) as refused:
        run(attempt())
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value) or "Authorization" in str(
        refused.value), refused.value


def test_a_connection_without_the_sites_certificate_is_refused(
    tmp_path: Path, boxes: list[NatsBox]
) -> None:
    import ssl

    import nats

    a = NatsBox(tmp_path / "a")
    boxes.append(a.start())
    # A client that trusts the site CA but shows no certificate of its own,
    # with the right password: TLS client verification still refuses it.
    context = ssl.create_default_context(cafile=str(a.paths.ca))
    context.check_hostname = False

    async def noop(*_: object) -> None:
        return None

    async def attempt() -> None:
        nc = await nats.connect(a.url, tls=context, user=site.NATS_USER,
                                password=site.nats_password(a.secret, a.site_name),
                                allow_reconnect=False, connect_timeout=3, error_cb=noop)
        await nc.flush(timeout=2)
        await nc.close()

    with pytest.raises(Exception):
        run(attempt())


def test_server_name_store_and_certificates_stay_the_same_across_applies(tmp_path: Path) -> None:
    box = NatsBox(tmp_path / "a")
    before = (box.paths.nats_config.read_text(), box.paths.cert.read_bytes())
    paths, changed = site.ensure_site_files(box.config, box.data_dir, box.secret,
                                            listen="127.0.0.1", port=box.port)
    assert not changed
    assert (paths.nats_config.read_text(), paths.cert.read_bytes()) == before
    # A new secret makes a new CA and certificate.
    _, changed = site.ensure_site_files(box.config, box.data_dir, "a whole new site secret",
                                        listen="127.0.0.1", port=box.port)
    assert changed
    assert box.paths.cert.read_bytes() != before[1]


def test_every_box_makes_the_same_site_ca_from_the_secret() -> None:
    first = site.make_certificates("tern gravel copper lantern", "mv-hope", "00000001")
    second = site.make_certificates("tern gravel copper lantern", "mv-hope", "00000002")
    assert site._same_ca(first[0], second[0])
    assert not site._same_ca(first[0], site.make_certificates(
        "tern gravel copper lantern", "other", "00000001")[0])


def test_the_secret_is_not_in_the_rendered_config(tmp_path: Path) -> None:
    box = NatsBox(tmp_path / "a")
    text = box.paths.nats_config.read_text()
    assert box.secret not in text
    assert box.paths.nats_config.stat().st_mode & 0o077 == 0
    assert box.paths.key.stat().st_mode & 0o077 == 0


def test_no_phone_reaches_the_site_port_not_even_from_another_box(tmp_path: Path) -> None:
    from provisioning.config import parse_config

    alone = render.render_nftables(BoxConfig())
    assert "4222" not in alone
    in_site = parse_config("site_name = mv-hope\n")
    rules = render.render_nftables(in_site)
    # Before "anything not from the hotspot is accepted": the site's phones, wherever
    # they are routed in from, are dropped at the NATS port.
    guard = f"ip saddr {in_site.network} tcp dport 4222 drop"
    assert guard in rules
    assert rules.index(guard) < rules.index('iifname != "wlan0" accept')
    path = tmp_path / "site.nft"
    path.write_text(rules)
    checked = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True,
                             timeout=30)
    if "Operation not permitted" in checked.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN (run the tests as root)")
    assert checked.returncode == 0, checked.stderr


def test_apply_writes_site_files_only_for_a_box_in_a_site(tmp_path: Path) -> None:
    from provisioning import credentials

    alone = tmp_path / "alone"
    apply_config(BoxConfig(), alone, root=tmp_path / "root1")
    assert not site.site_dir(alone).exists()

    member = tmp_path / "member"
    member.mkdir()
    credentials.set_site_secret(member, "tern gravel copper lantern")
    report = apply_config(BoxConfig(site_name="mv-hope"), member, root=tmp_path / "root2")
    paths = site.SitePaths(site.site_dir(member))
    assert paths.nats_config in report.changed_files
    assert 'server_name: "mv-hope-' in paths.nats_config.read_text()
    assert SITE_SERVICE == "ahoy-nats.service"


def test_the_server_listens_on_the_backbone_address_once_the_box_has_one(tmp_path: Path) -> None:
    import json
    from ipaddress import IPv4Address, IPv4Network

    from provisioning import backbone, credentials, sitenet

    data = tmp_path / "data"
    data.mkdir()
    credentials.set_site_secret(data, "tern gravel copper lantern")
    config = BoxConfig(site_name="mv-hope")
    paths, _ = site.ensure_site_files(config, data, "tern gravel copper lantern")
    # No backbone address yet: the box is alone, and its server is on loopback only.
    assert site.rendered_listen(paths) == ("127.0.0.1", 4222)
    assert "0.0.0.0" not in paths.nats_config.read_text()
    asked: list[str] = []
    me = sitenet.Peer(1, "box-a", IPv4Address("169.254.7.9"), IPv4Network("10.42.1.0/24"))
    bb = backbone.Backbone(config, None, data, request_apply=lambda: asked.append("apply"))
    bb.discovery = backbone.Discovery("mv-hope", b"k", me)
    # The backbone service took an address: it asks for an apply, once.
    bb._follow_nats_listen()
    bb._follow_nats_listen()
    assert asked == ["apply"]
    site.DataDir(data).site_backbone.write_text(json.dumps({"box": {"backbone": "169.254.7.9"}}))
    _, changed = site.ensure_site_files(config, data, "tern gravel copper lantern")
    assert changed
    assert site.rendered_listen(paths) == ("169.254.7.9", 4222)
    bb._asked_listen = ""
    bb._follow_nats_listen()
    assert asked == ["apply"]  # rendered as it should be: nothing to ask


def test_a_new_secret_locks_out_a_lost_box_that_has_only_the_old_one(
    tmp_path: Path, boxes: list[NatsBox]
) -> None:
    from provisioning import credentials

    a, lost = NatsBox(tmp_path / "a"), NatsBox(tmp_path / "lost")
    boxes.append(a.start())

    async def attempt() -> None:
        nc = await lost.connect_to(a)
        await nc.close()

    run(attempt())  # one site: linked
    a.stop()
    a.secret = "a new secret after the box was stolen"
    credentials.set_site_secret(a.data_dir, a.secret)
    _, changed = site.ensure_site_files(a.config, a.data_dir, a.secret, listen="127.0.0.1",
                                        port=a.port)
    assert changed  # a new CA and certificate: the server restarts with them
    a.start()
    with pytest.raises(Exception) as refused:
        run(attempt())
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value) or "Authorization" in str(
        refused.value), refused.value


def _box_id_of(data: str) -> str:
    return site.box_id(Path(data))


def test_a_box_has_one_id_made_once_that_the_backbone_and_the_replication_share(
    tmp_path: Path,
) -> None:
    import json
    from concurrent.futures import ProcessPoolExecutor
    from ipaddress import IPv4Address, IPv4Network

    from provisioning import backbone, sitenet

    data = tmp_path / "data"
    # Provisioning, the backbone service and the Ahoy service ask at once on a first start.
    with ProcessPoolExecutor(4) as pool:
        made = set(pool.map(_box_id_of, [str(data)] * 8))
    assert len(made) == 1
    box = made.pop()
    assert site.BOX_ID.fullmatch(box) and site.box_id(data) == box
    assert [p.name for p in site.site_dir(data).iterdir()] == ["box-id"]  # no drafts left
    # The backbone announces and writes down the same id.
    assert backbone.own_id(data) == int(box, 16)
    me = sitenet.Peer(backbone.own_id(data), "box-a", IPv4Address("169.254.7.9"),
                      IPv4Network("10.42.1.0/24"))
    key = backbone.site_key("mv-hope", "tern gravel copper lantern")
    assert backbone.announcement_properties("mv-hope", key, me)["id"] == box
    heard = backbone.peer_from_properties(
        {k.encode(): v.encode() for k, v in
         backbone.announcement_properties("mv-hope", key, me).items()}, "mv-hope", key)
    assert heard is not None and heard.box_id == me.box_id
    backbone.write_status(data, me, [], [], None)
    assert json.loads(site.DataDir(data).site_backbone.read_text())["box"]["id"] == box
    # A factory reset (a new data partition) makes a new box.
    assert site.box_id(tmp_path / "wiped") != box
