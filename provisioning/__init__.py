"""Turn the box config file (`ahoy.txt`) into system state.

Modules, from the pure core outwards:

- `regulatory`: countries and the Wi-Fi channels allowed there.
- `config`: the file's schema (`KEYS`, one row per key), parser and validator
  (`parse_config`, `BoxConfig`, `ConfigError` of `Problem`s, `change_config`).
- `render`: hostapd, dnsmasq, nftables, coturn and networkd files from a config.
- `credentials`: admin password hash, TURN secret and TURN credentials.
- `configstore`: the config in force (boot file, else last good, else defaults),
  moving secrets out of the boot file, admin-page changes.
- `tls`: the box CA, server certificate, iOS profile, uploaded certificates.
- `apply`: writing files into /etc and changing the machine, idempotently.
- `__main__`: `python -m provisioning check|render|apply`.

See docs/config.md for the file format.
"""
