"""One box of a site in its network namespace: the real backbone loop of provisioning.backbone.

    site_box.py CONFIG_FILE DATA_DIR SITE_SECRET

Run with `ip netns exec`. Takes the backbone address (arping probes), announces
and browses with zeroconf, keeps the routes; runs until terminated.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

from provisioning.backbone import Backbone
from provisioning.config import parse_config
from provisioning.configstore import interface_mac


def main() -> None:
    config_file, data_dir, secret = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    text = config_file.read_text()
    mac = interface_mac(parse_config(text).interface)
    config = parse_config(text, mac=mac)
    backbone = Backbone(config, mac, data_dir, site_secret=secret,
                        subnet_pinned="hotspot_subnet" in config_file.read_text())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    backbone.start()
    try:
        while True:
            backbone.step()
            time.sleep(0.3)
    finally:
        backbone.close()


if __name__ == "__main__":
    main()
