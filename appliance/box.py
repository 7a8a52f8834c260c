"""What the service's parts share: the settings, the hub and the box's status.

One `Box` per application, kept in `app.extensions["ahoy"]`; `box_of(app)`
finds it from any blueprint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from .handoff import Handoffs
from .hub import Hub
from .settings import Settings


def run_here(work: Callable[[], Any]) -> Any:
    """Run `work` in the calling thread (development; `Box.run_blocking`'s default)."""
    return work()


@dataclass
class Box:
    """Everything the blueprints share, kept in `app.extensions["ahoy"]`."""

    settings: Settings
    hub: Hub
    started: float = field(default_factory=time.time)
    # Facts about the hotspot and config, updated by the watchers.
    status: dict[str, Any] = field(default_factory=dict)
    # Runs blocking or CPU-heavy work (password hashing, decoding pictures) and
    # returns its result. In production a thread of gevent's pool, so the loop
    # serves everyone else meanwhile; in development the calling thread.
    run_blocking: Callable[[Callable[[], Any]], Any] = run_here
    # The box's link to the other boxes of its site (appliance.site.link.SiteLink);
    # None for a box alone.
    site: Any = None
    # One-time codes carrying a device token from the http app to the https one.
    handoffs: Handoffs = field(default_factory=Handoffs)


def box_of(app: Flask) -> Box:
    box: Box = app.extensions["ahoy"]
    return box
