"""Several boxes as one Ahoy: a site (docs/site.md).

- `records`: what the boxes tell each other, checked on arrival;
- `replica`: this box's side in SQLite (positions, versions, outbox);
- `bridge`: the NATS client in its own thread with its own asyncio loop;
- `channel`: the inbox from that thread to the service's loop;
- `link`: `SiteLink`, the hub's `Replication` for a box in a site.

Nothing here is imported or runs on a box without `site_name`.
"""
