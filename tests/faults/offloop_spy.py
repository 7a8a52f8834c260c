"""`python -m appliance` with spies that note which OS thread hashes passwords
and decodes pictures (for test_cheap_requests.py).

Each call appends "<what> main" or "<what> worker" to the file named by
AHOY_SPY_LOG: "main" is the thread gevent's loop runs in.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from gevent import monkey

monkey.patch_all()

from gevent.monkey import get_original  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import appliance.avatars as avatars  # noqa: E402
import provisioning.credentials as credentials  # noqa: E402

real_thread_id = get_original("_thread", "get_ident")
LOOP_THREAD = real_thread_id()
LOG = Path(os.environ["AHOY_SPY_LOG"])


def spy(name: str, work: Any) -> Any:
    def watched(*args: Any, **kwargs: Any) -> Any:
        where = "main" if real_thread_id() == LOOP_THREAD else "worker"
        with LOG.open("a") as f:
            f.write(f"{name} {where}\n")
        return work(*args, **kwargs)

    return watched


credentials._scrypt = spy("scrypt", credentials._scrypt)
avatars.reencode = spy("reencode", avatars.reencode)

if __name__ == "__main__":
    from appliance.__main__ import main

    sys.exit(main(sys.argv[1:]))
