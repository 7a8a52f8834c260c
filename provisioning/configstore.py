"""The config in force on a box: the boot file, else the last good one, else defaults.

A bad `ahoy.txt` must never leave the box without a hotspot, so loading never
fails: the errors travel with the config that is used instead, get written to
the data dir for the admin page and the LEDs, and are printed by the CLI.

`load_config` is the first-boot/boot-time entry point (run as root by the
apply step): it also moves the admin password out of the boot file and makes
one up when there is none. `read_config` only reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network
from pathlib import Path

from provisioning import credentials, regulatory, sitenet, wireless
from provisioning.config import (
    BoxConfig,
    ConfigError,
    Problem,
    admin_password_problem,
    change_config,
    decode_config,
    decode_with_codec,
    default_dhcp_range,
    format_config,
    parse_config,
    parse_file,
    read_entries,
    set_values,
    site_secret_problem,
    wifi_name_for_mac,
)
from provisioning.datadir import ADMIN_PASSWORD_NOTE, DataDir, write_file

SYS_CLASS_NET = Path("/sys/class/net")
# Why an interface cannot carry the hotspot, or None (see provisioning.wireless).
InterfaceCheck = Callable[[str], str | None]


@dataclass(frozen=True)
class LoadedConfig:
    """The config in force, where it came from, and what was wrong with the file.

    source: "file" (the boot file is good), "last-good" (the boot file is bad or
    missing and the last good config is used) or "defaults".
    """

    config: BoxConfig
    source: str
    errors: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()
    generated_admin_password: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors


def interface_mac(interface: str, sys_class_net: Path = SYS_CLASS_NET) -> str | None:
    """The MAC address of a network interface, None if it is not there."""
    try:
        return (sys_class_net / interface / "address").read_text().strip() or None
    except OSError:
        return None


def read_config(
    boot_file: Path,
    data_dir: Path,
    *,
    mac: str | None = None,
    sys_class_net: Path = SYS_CLASS_NET,
    interface_problem: InterfaceCheck = wireless.access_point_problem,
) -> LoadedConfig:
    """The config to use, without changing anything on disk.

    `interface_problem` says why an interface cannot carry the hotspot (not
    Wi-Fi, no access point mode); a config whose interface it refuses is not
    used, like a config with a wrong value.
    """
    errors: list[str] = []
    try:
        data = boot_file.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as exc:
        data = None
        errors.append(f"cannot read {boot_file}: {exc.strerror}")
    if data is not None:
        try:
            parsed = parse_file(decode_config(data))
            # The default Wi-Fi name is made from the MAC of the interface the file names.
            found = interface_mac(parsed.interface, sys_class_net) if mac is None else mac
            config = _with_chosen_subnet(parsed.config(found), parsed.values, data_dir)
            config = _with_chosen_channel(config, parsed.values, data_dir)
            problem = None if config.lan_mode else interface_problem(config.interface)
            if problem is None:
                return LoadedConfig(config, "file")
            where = Problem(parsed.lines.get("interface"), "interface", problem)
            errors.append(f"{boot_file.name}: {where}")
        except ConfigError as exc:
            errors += [f"{boot_file.name}: {m}" for m in exc.messages]
    fallback = _last_good(data_dir)
    if fallback is not None:
        problem = None if fallback.lan_mode else interface_problem(fallback.interface)
        if problem is None:
            return LoadedConfig(fallback, "last-good", tuple(errors))
        errors.append(f"the last good config cannot be used either: {problem}")
    if mac is None:
        mac = interface_mac(BoxConfig.interface, sys_class_net)
    defaults = BoxConfig(wifi_name=wifi_name_for_mac(mac))
    return LoadedConfig(defaults, "defaults", tuple(errors))


def _with_chosen_subnet(
    config: BoxConfig, written: Mapping[str, object], data_dir: Path
) -> BoxConfig:
    """In a site, the hotspot subnet the backbone moved this box to (another box had
    the first choice), unless ahoy.txt pins one."""
    if not config.in_site or "hotspot_subnet" in written:
        return config
    try:
        text = DataDir(data_dir).chosen_hotspot_subnet.read_bytes()[:64].decode("ascii")
        chosen = IPv4Network(text.strip())
    except (OSError, UnicodeDecodeError, ValueError):
        return config
    if chosen not in sitenet.slots(config.network):
        return config  # from an older network setting
    return replace(config, hotspot_subnet=chosen, dhcp_range=default_dhcp_range(chosen))


def _with_chosen_channel(
    config: BoxConfig, written: Mapping[str, object], data_dir: Path
) -> BoxConfig:
    """In a site, the hotspot channel chosen by scanning for the neighbours
    (provisioning.channelscan), unless ahoy.txt sets `channel`."""
    if not config.in_site or "channel" in written:
        return config
    try:
        chosen = int(DataDir(data_dir).chosen_channel.read_bytes()[:8].decode("ascii").strip())
    except (OSError, UnicodeDecodeError, ValueError):
        return config
    if chosen not in regulatory.allowed_channels(config.country, config.band):
        return config  # from another band or country setting
    return replace(config, channel=chosen)


def channel_pinned(boot_file: Path) -> bool:
    """Whether ahoy.txt sets `channel` itself (then the box never scans for one)."""
    try:
        entries, _ = read_entries(decode_config(boot_file.read_bytes()))
    except (OSError, ConfigError):
        return False
    return any(e.key == "channel" and e.value for e in entries)


def hotspot_subnet_pinned(boot_file: Path) -> bool:
    """Whether ahoy.txt sets hotspot_subnet itself (then the box never moves it)."""
    try:
        entries, _ = read_entries(decode_config(boot_file.read_bytes()))
    except (OSError, ConfigError):
        return False
    return any(e.key == "hotspot_subnet" and e.value for e in entries)


def load_config(
    boot_file: Path,
    data_dir: Path,
    *,
    mac: str | None = None,
    sys_class_net: Path = SYS_CLASS_NET,
    interface_problem: InterfaceCheck = wireless.access_point_problem,
) -> LoadedConfig:
    """Load the config for applying it: read_config plus the first-boot chores.

    - remembers a good config as the last good one (without the admin password);
    - moves `admin_password` from the boot file into the data dir (as a hash) and
      blanks it in the file, keeping every other line as it was;
    - makes up an admin password when the box has none, writes it next to the
      boot file (ahoy-admin-password.txt) and returns it in
      `generated_admin_password` so the caller can print it on the console;
    - writes the status (source and errors) for the admin page and the LEDs;
    - keeps a copy of the boot file on the data partition and puts it back when the
      boot file is missing (an update image, flashed over the card, carries none).
    """
    store = DataDir(data_dir)
    notices: list[str] = []
    errors: list[str] = []
    _restore_boot_file(boot_file, data_dir, notices, errors)
    _merge_requested_changes(boot_file, data_dir, notices, errors)
    loaded = read_config(boot_file, data_dir, mac=mac, sys_class_net=sys_class_net,
                         interface_problem=interface_problem)
    errors += loaded.errors
    if loaded.source == "file":
        write_file(store.last_good_config, format_config(loaded.config.without_secrets()).encode())
    moved = _take_admin_password(boot_file, data_dir, errors)
    if moved:
        notices.append(f"the admin password from {boot_file.name} is now set; the line was blanked")
    if _take_site_secret(boot_file, data_dir, errors):
        notices.append(f"the site secret from {boot_file.name} is now kept on the data "
                       "partition; the line was blanked")
    if loaded.config.site_name and credentials.read_site_secret(data_dir) is None:
        errors.append(
            f"site_name is set ({loaded.config.site_name}) but this box has no site_secret: "
            f"write site_secret = ... into {boot_file.name}, the same on every box of the "
            "site. Until then this box works alone."
        )
    generated = None
    if not credentials.has_admin_password(data_dir):
        if credentials.admin_password_damaged(data_dir):
            notices.append("the stored admin password was damaged (perhaps by a power cut); "
                           "a new one was made")
        generated = credentials.generate_admin_password()
        credentials.set_admin_password(data_dir, generated)
        note = boot_file.parent / ADMIN_PASSWORD_NOTE
        try:
            credentials.write_admin_password_note(
                boot_file.parent, generated, "Made up by the box at its first start."
            )
            notices.append(f"a new admin password was made and written to {note}")
        except OSError as exc:
            errors.append(f"could not write the new admin password to {note}: {exc.strerror}")
    _keep_boot_file_copy(boot_file, data_dir, errors)
    result = LoadedConfig(
        loaded.config.without_secrets(),
        loaded.source,
        tuple(errors),
        tuple(notices),
        generated,
    )
    write_status(data_dir, result)
    return result


def _restore_boot_file(
    boot_file: Path, data_dir: Path, notices: list[str], errors: list[str]
) -> None:
    """Put the owner's file back from the data partition when the boot partition has
    none (after an update image) or an empty one (a power cut while FAT was written);
    without a copy the last good config is used."""
    copy = DataDir(data_dir).boot_file_copy
    try:
        size: int | None = boot_file.stat().st_size
    except FileNotFoundError:
        size = None
    except OSError:
        return
    if size or not copy.exists():
        return
    try:
        write_file(boot_file, copy.read_bytes())
    except OSError as exc:
        errors.append(f"could not put {boot_file.name} back from the data partition: "
                      f"{exc.strerror}")
        return
    why = ("was missing on the boot partition (an update image?)" if size is None
           else "was empty (a power cut while it was being written?)")
    notices.append(f"{boot_file.name} {why}; it was put back from the copy on the data "
                   "partition")


def _keep_boot_file_copy(boot_file: Path, data_dir: Path, errors: list[str]) -> None:
    """The boot file as it is now (admin password and site secret already blanked);
    an empty one is not kept (the copy is what puts it back)."""
    try:
        data = boot_file.read_bytes()
    except OSError:
        return
    if not data:
        return
    try:
        write_file(DataDir(data_dir).boot_file_copy, data, mode=0o600)
    except OSError as exc:
        errors.append(f"could not keep a copy of {boot_file.name} on the data partition: "
                      f"{exc.strerror}")


def _last_good(data_dir: Path) -> BoxConfig | None:
    """The last good config, None if there is none or it is damaged."""
    try:
        return parse_config(decode_config(DataDir(data_dir).last_good_config.read_bytes()))
    except (OSError, ConfigError):
        return None


def current_config(data_dir: Path) -> BoxConfig:
    """The config last applied successfully (what the box runs), or the defaults."""
    return _last_good(data_dir) or BoxConfig()


def request_changes(data_dir: Path, changes: Mapping[str, str]) -> BoxConfig:
    """Validate settings changed on the admin page and queue them for the apply step.

    Runs in the unprivileged service. Raises ConfigError (messages name the key)
    when a value is wrong. The privileged apply (e.g. triggered by a systemd path
    unit watching `DataDir.requested_changes`) writes them into ahoy.txt, so the
    file on the SD card stays the one place that says how the box is set up.
    """
    store = DataDir(data_dir)
    try:
        pending = json.loads(store.requested_changes.read_text())
    except (OSError, ValueError):
        pending = {}
    if not isinstance(pending, dict):
        pending = {}
    pending.update(changes)
    current = current_config(data_dir)
    new = change_config(current, pending, mac=interface_mac(current.interface))
    write_file(store.requested_changes, (json.dumps(pending, indent=2) + "\n").encode())
    return new


def _merge_requested_changes(
    boot_file: Path, data_dir: Path, notices: list[str], errors: list[str]
) -> None:
    path = DataDir(data_dir).requested_changes
    try:
        changes = json.loads(path.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        errors.append("the settings saved on the admin page could not be read; set them again")
        path.unlink(missing_ok=True)
        return
    if not isinstance(changes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in changes.items()
    ):
        path.unlink(missing_ok=True)
        return
    try:
        text, codec = decode_with_codec(boot_file.read_bytes())
    except FileNotFoundError:
        text, codec = "", "utf-8"
    except (OSError, ConfigError) as exc:
        errors.append(f"cannot apply the admin page's settings to {boot_file}: {exc}")
        return
    if not text.strip():
        # No file, or one emptied by accident: the box runs its last good config,
        # so the changes go on top of that, not on top of the defaults.
        last_good = _last_good(data_dir)
        if last_good is not None:
            text = format_config(last_good)
    try:
        write_file(boot_file, set_values(text, changes).encode(codec))
    except OSError as exc:
        errors.append(
            f"cannot write the admin page's settings into {boot_file}: {exc.strerror}"
        )
        return
    path.unlink()
    notices.append(f"wrote the admin page's settings into {boot_file.name}: {', '.join(changes)}")


def _take_admin_password(boot_file: Path, data_dir: Path, errors: list[str]) -> bool:
    """Move a valid admin password out of the boot file, even if other lines are bad."""
    try:
        data = boot_file.read_bytes()
        text, codec = decode_with_codec(data)
    except (OSError, ConfigError):
        return False
    entries, _ = read_entries(text)
    password = next((e.value for e in entries if e.key == "admin_password"), "")
    if not password or admin_password_problem(password):
        return False
    credentials.set_admin_password(data_dir, password)
    blanked = set_values(text, {"admin_password": ""}).encode(codec)
    try:
        write_file(boot_file, blanked)
    except OSError as exc:
        errors.append(
            f"the admin password was set, but {boot_file} could not be rewritten to blank it "
            f"({exc.strerror}); remove it from the file by hand"
        )
    return True


def _take_site_secret(boot_file: Path, data_dir: Path, errors: list[str]) -> bool:
    """Move a valid site secret out of the boot file, even if other lines are bad."""
    try:
        text, codec = decode_with_codec(boot_file.read_bytes())
    except (OSError, ConfigError):
        return False
    entries, _ = read_entries(text)
    secret = next((e.value for e in entries if e.key == "site_secret"), "")
    if not secret or site_secret_problem(secret):
        return False
    try:
        credentials.set_site_secret(data_dir, secret)
    except OSError as exc:
        errors.append(f"could not keep the site secret ({exc.strerror}); it stays in "
                      f"{boot_file.name} and this box works alone until it can")
        return False
    try:
        write_file(boot_file, set_values(text, {"site_secret": ""}).encode(codec))
    except OSError as exc:
        errors.append(
            f"the site secret was kept, but {boot_file} could not be rewritten to blank it "
            f"({exc.strerror}); remove it from the file by hand"
        )
    return True


def write_status(data_dir: Path, loaded: LoadedConfig) -> None:
    """Record what is in force for the admin page and the status LED."""
    status = {
        "source": loaded.source,
        "errors": list(loaded.errors),
        "notices": list(loaded.notices),
    }
    write_file(DataDir(data_dir).config_status, (json.dumps(status, indent=2) + "\n").encode())


def read_status(data_dir: Path) -> dict[str, object]:
    """What `load_config` recorded last: {"source": ..., "errors": [...], "notices": [...]}.

    The service reads this to show config errors on the admin page and to set
    the error LED; an empty "errors" list means the boot file was fine.
    """
    try:
        status = json.loads(DataDir(data_dir).config_status.read_text())
    except (OSError, ValueError):
        return {"source": "unknown", "errors": [], "notices": []}
    return status if isinstance(status, dict) else {"source": "unknown", "errors": []}
