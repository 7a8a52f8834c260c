"""Loading the config at boot: fallback, last good config, and secrets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from provisioning import configstore, credentials
from provisioning.config import BoxConfig, ConfigError, parse_config
from provisioning.datadir import ADMIN_PASSWORD_NOTE, DataDir


@pytest.fixture
def sys_net(tmp_path: Path) -> Path:
    """A fake /sys/class/net with a wlan0 whose MAC ends in 3f:2a."""
    (tmp_path / "net" / "wlan0").mkdir(parents=True)
    (tmp_path / "net" / "wlan0" / "address").write_text("b8:27:eb:12:3f:2a\n")
    return tmp_path / "net"


def test_missing_file_gives_defaults_named_after_the_wifi_mac(
    boot: Path, data: Path, sys_net: Path
) -> None:
    loaded = configstore.read_config(boot, data, sys_class_net=sys_net)
    assert loaded.source == "defaults"
    assert loaded.ok
    assert loaded.config.wifi_name == "Ahoy-3F2A"


def test_good_file_is_used_and_remembered(boot: Path, data: Path, sys_net: Path) -> None:
    boot.write_text("wifi_passphrase = correct horse\ncountry = DE\n")
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert (loaded.source, loaded.errors) == ("file", ())
    assert loaded.config.country == "DE"
    remembered = parse_config(DataDir(data).last_good_config.read_text())
    assert remembered == loaded.config
    assert remembered.wifi_name == "Ahoy-3F2A"


def test_bad_file_keeps_the_last_good_config_and_reports_why(
    boot: Path, data: Path, sys_net: Path
) -> None:
    boot.write_text("wifi_name = Good Boat\nchannel = 11\n")
    configstore.load_config(boot, data, sys_class_net=sys_net)
    boot.write_text("wifi_name = Good Boat\nchannel = 99\n")
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert loaded.source == "last-good"
    assert loaded.config.wifi_name == "Good Boat"
    assert loaded.config.channel == 11
    assert loaded.errors == (
        "ahoy.txt: line 2: channel 99 is not allowed on 2.4 GHz without a country set; "
        "use one of 1 to 11",
    )
    status = configstore.read_status(data)
    assert status["source"] == "last-good"
    assert status["errors"] == list(loaded.errors)


def test_bad_file_without_history_gives_safe_defaults(
    boot: Path, data: Path, sys_net: Path
) -> None:
    boot.write_bytes(b"\x00\x01garbage")
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert loaded.source == "defaults"
    assert loaded.config == BoxConfig(wifi_name="Ahoy-3F2A")
    assert "binary data" in loaded.errors[0]


def test_a_damaged_last_good_file_falls_back_to_defaults(
    boot: Path, data: Path, sys_net: Path
) -> None:
    last_good = DataDir(data).last_good_config
    last_good.parent.mkdir(parents=True)
    last_good.write_text("channel = nope")
    boot.write_text("channel = 99")
    assert configstore.read_config(boot, data, sys_class_net=sys_net).source == "defaults"


def test_admin_password_moves_to_the_data_dir_and_the_line_is_blanked(
    boot: Path, data: Path, sys_net: Path
) -> None:
    original = "\ufeff# my box\r\nadmin_password = \"sea shanty 42\"\r\nchannel = 1\r\n"
    boot.write_bytes(original.encode())
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert loaded.generated_admin_password is None
    assert credentials.verify_admin_password(data, "sea shanty 42")
    assert not credentials.verify_admin_password(data, "sea shanty 43")
    assert boot.read_bytes() == "\ufeff# my box\r\nadmin_password =\r\nchannel = 1\r\n".encode()
    stored = DataDir(data).admin_password.read_text()
    assert "sea shanty" not in stored
    assert os.stat(DataDir(data).admin_password).st_mode & 0o077 == 0
    assert "sea shanty" not in DataDir(data).last_good_config.read_text()
    assert not (boot.parent / ADMIN_PASSWORD_NOTE).exists()


def test_admin_password_is_taken_even_when_another_line_is_wrong(
    boot: Path, data: Path, sys_net: Path
) -> None:
    boot.write_text("admin_password = sea shanty 42\nchannel = 99\n")
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert loaded.errors
    assert credentials.verify_admin_password(data, "sea shanty 42")
    assert "sea shanty" not in boot.read_text()


def test_first_boot_without_password_makes_one_and_writes_it_to_the_boot_partition(
    boot: Path, data: Path, sys_net: Path
) -> None:
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    password = loaded.generated_admin_password
    assert password and len(password) >= 16
    assert credentials.verify_admin_password(data, password)
    assert password in (boot.parent / ADMIN_PASSWORD_NOTE).read_text()
    again = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert again.generated_admin_password is None


def test_generated_passwords_differ_per_box() -> None:
    made = {credentials.generate_admin_password() for _ in range(50)}
    assert len(made) == 50
    assert all(len(p) == 19 and p.count("-") == 3 for p in made)
    assert not any(c in p for p in made for c in "01lIoO")


def test_a_new_password_in_the_file_resets_a_forgotten_one(
    boot: Path, data: Path, sys_net: Path
) -> None:
    configstore.load_config(boot, data, sys_class_net=sys_net)
    boot.write_text("admin_password = brand new pass\n")
    configstore.load_config(boot, data, sys_class_net=sys_net)
    assert credentials.verify_admin_password(data, "brand new pass")


def test_set_admin_password_checks_the_rules(data: Path) -> None:
    with pytest.raises(ValueError, match="at least 8 characters"):
        credentials.set_admin_password(data, "short")
    credentials.set_admin_password(data, "long enough")
    assert credentials.verify_admin_password(data, "long enough")


def test_verify_without_a_password_set_or_with_a_damaged_file_is_false(data: Path) -> None:
    assert not credentials.verify_admin_password(data, "anything")
    DataDir(data).secrets.mkdir(parents=True)
    DataDir(data).admin_password.write_text(json.dumps({"algorithm": "md5"}))
    assert not credentials.verify_admin_password(data, "anything")
    DataDir(data).admin_password.write_text("not json")
    assert not credentials.verify_admin_password(data, "anything")


def test_read_only_boot_partition_is_reported_not_fatal(
    boot: Path, data: Path, sys_net: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    boot.write_text("admin_password = sea shanty 42\n")
    real_write = configstore.write_file

    def refuse_boot_partition(path: Path, content: bytes, mode: int = 0o644) -> bool:
        if path.parent == boot.parent:
            raise PermissionError(13, "Read-only file system", str(path))
        return real_write(path, content, mode)

    monkeypatch.setattr(configstore, "write_file", refuse_boot_partition)
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert credentials.verify_admin_password(data, "sea shanty 42")
    assert any("remove it from the file by hand" in e for e in loaded.errors)


def test_turn_secret_is_made_once_and_kept(data: Path) -> None:
    first = credentials.turn_secret(data)
    assert len(first) >= 32
    assert credentials.turn_secret(data) == first
    assert os.stat(DataDir(data).turn_secret).st_mode & 0o077 == 0


def test_turn_credentials_follow_the_coturn_rest_scheme() -> None:
    user, password = credentials.turn_credentials("secret", "alice", 60, now=1000)
    assert user == "1060:alice"
    # echo -n 1060:alice | openssl dgst -sha1 -hmac secret -binary | base64
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"secret", b"1060:alice", hashlib.sha1).digest())
    assert password == expected.decode()


# --- settings changed on the admin page


def test_admin_page_changes_are_validated_like_the_file(data: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        configstore.request_changes(data, {"wifi_passphrase": "short", "chanel": "6"})
    assert caught.value.messages == [
        "unknown key 'chanel'; did you mean channel?",
    ]
    with pytest.raises(ConfigError) as caught:
        configstore.request_changes(data, {"wifi_passphrase": "short"})
    assert caught.value.messages == [
        "wifi_passphrase must be 8 to 63 characters (it has 5); leave it empty for an open network"
    ]
    with pytest.raises(ConfigError, match="set the admin password on its own"):
        configstore.request_changes(data, {"admin_password": "whatever123"})
    assert not DataDir(data).requested_changes.exists()


def test_admin_page_changes_land_in_the_boot_file_keeping_its_comments(
    boot: Path, data: Path, sys_net: Path
) -> None:
    boot.write_bytes(b"# Ship's hotspot\r\nwifi_name = Good Boat\r\ncountry = DE\r\n")
    configstore.load_config(boot, data, sys_class_net=sys_net)
    new = configstore.request_changes(data, {"channel": "11"})
    new = configstore.request_changes(data, {"wifi_passphrase": "correct horse"})
    assert (new.channel, new.wifi_passphrase, new.wifi_name) == (11, "correct horse", "Good Boat")
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert loaded.source == "file" and loaded.ok
    assert loaded.config.channel == 11
    assert boot.read_bytes() == (
        b"# Ship's hotspot\r\nwifi_name = Good Boat\r\ncountry = DE\r\n"
        b"channel = 11\r\nwifi_passphrase = correct horse\r\n"
    )
    assert not DataDir(data).requested_changes.exists()
    assert configstore.current_config(data).channel == 11


def test_the_service_reads_the_turn_secret_but_never_invents_one(data: Path) -> None:
    assert credentials.read_turn_secret(data) is None
    made = credentials.turn_secret(data)
    assert credentials.read_turn_secret(data) == made


def test_site_secret_moves_to_the_data_dir_and_the_line_is_blanked(
    boot: Path, data: Path, sys_net: Path
) -> None:
    boot.write_text("site_name = MV-Hope\nsite_secret = tern gravel copper lantern\n")
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert loaded.errors == ()
    assert loaded.config.site_name == "mv-hope"
    assert loaded.config.site_secret == ""
    assert credentials.read_site_secret(data) == "tern gravel copper lantern"
    assert os.stat(DataDir(data).site_secret).st_mode & 0o077 == 0
    assert boot.read_text() == "site_name = MV-Hope\nsite_secret =\n"
    assert "tern gravel" not in DataDir(data).last_good_config.read_text()
    assert "tern gravel" not in DataDir(data).config_status.read_text()
    again = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert again.errors == ()
    assert credentials.read_site_secret(data) == "tern gravel copper lantern"


def test_a_site_name_without_a_site_secret_is_reported_and_the_box_works_alone(
    boot: Path, data: Path, sys_net: Path
) -> None:
    boot.write_text("site_name = mv-hope\n")
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert loaded.source == "file"
    assert any("no site_secret" in e and "works alone" in e for e in loaded.errors)
    assert credentials.read_site_secret(data) is None


def test_a_wrong_site_secret_stays_in_the_file_and_is_never_quoted_back(
    boot: Path, data: Path, sys_net: Path
) -> None:
    boot.write_text("site_name = mv-hope\nsite_secret = shorty-pass\n")
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert any("site_secret must be 16 to 128 characters (it has 11)" in e
               for e in loaded.errors)
    assert not any("shorty" in e for e in loaded.errors)
    assert credentials.read_site_secret(data) is None


def test_the_owners_file_is_kept_on_the_data_partition_and_put_back_after_an_update(
    boot: Path, data: Path, sys_net: Path
) -> None:
    """An update image has no ahoy.txt: the box puts the owner's file back, byte for byte."""
    text = "# my boat\nwifi_name = Good Boat\nwifi_passphrase = correct horse\ncountry = DE\n"
    boot.write_text(text)
    configstore.load_config(boot, data, sys_class_net=sys_net)
    copy = DataDir(data).boot_file_copy
    assert copy.read_text() == text and (copy.stat().st_mode & 0o777) == 0o600
    boot.unlink()  # the update image was flashed over the boot partition
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert boot.read_text() == text
    assert (loaded.source, loaded.config.wifi_name) == ("file", "Good Boat")
    assert any("put back" in notice for notice in loaded.notices)


def test_without_a_copy_a_missing_file_keeps_the_last_good_config(
    boot: Path, data: Path, sys_net: Path
) -> None:
    boot.write_text("wifi_name = Good Boat\n")
    configstore.load_config(boot, data, sys_class_net=sys_net)
    boot.unlink()
    DataDir(data).boot_file_copy.unlink()
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert not boot.exists()
    assert (loaded.source, loaded.config.wifi_name) == ("last-good", "Good Boat")


def test_an_ahoy_txt_emptied_by_a_power_cut_is_put_back_from_the_copy(
    boot: Path, data: Path, sys_net: Path
) -> None:
    """FAT lost the new file's entry after a power cut (seen in `make plug-test`): the
    card then holds an empty ahoy.txt. The owner's file comes back, byte for byte."""
    text = "# my boat\nbox_name = plug-3\nwifi_name = Good Boat\n"
    boot.write_text(text)
    configstore.load_config(boot, data, sys_class_net=sys_net)
    boot.write_bytes(b"")
    loaded = configstore.load_config(boot, data, sys_class_net=sys_net)
    assert boot.read_text() == text
    assert DataDir(data).boot_file_copy.read_text() == text
    assert (loaded.source, loaded.config.wifi_name) == ("file", "Good Boat")
    assert any("was empty" in notice and "put back" in notice for notice in loaded.notices)


def test_an_empty_ahoy_txt_is_never_kept_as_the_copy(
    boot: Path, data: Path, sys_net: Path
) -> None:
    boot.write_bytes(b"")
    configstore.load_config(boot, data, sys_class_net=sys_net)
    assert not DataDir(data).boot_file_copy.exists()


def test_the_boot_partition_is_told_apart_as_fat(tmp_path: Path) -> None:
    """write_file syncs the whole system after writing on FAT (its folder sync does not
    make the rename durable); the file system is read from mountinfo."""
    from provisioning.datadir import FOLDERS_NOT_SYNCED, file_system_type

    mountinfo = (
        "22 1 179:2 / / ro,relatime shared:1 - ext4 /dev/mmcblk0p2 ro\n"
        "25 22 0:21 / / rw,relatime shared:2 - overlay overlay rw,lowerdir=/media/root-ro\n"
        "30 25 179:1 / /boot/firmware rw,noatime shared:3 - vfat /dev/mmcblk0p1 rw,flush\n"
        "31 25 179:3 / /data rw,noatime shared:4 - ext4 /dev/mmcblk0p3 rw\n"
        "32 25 8:1 / /media/usb\\040stick rw shared:5 - exfat /dev/sda1 rw\n"
    )
    def kind(path: str) -> str:
        return file_system_type(Path(path), mountinfo)

    assert kind("/boot/firmware") == "vfat" and "vfat" in FOLDERS_NOT_SYNCED
    assert kind("/data/ahoy/config") == "ext4"
    assert kind("/etc") == "overlay"
    assert kind("/media/usb stick/x") == "exfat"
    assert file_system_type(tmp_path) not in FOLDERS_NOT_SYNCED  # the tests' own disk
