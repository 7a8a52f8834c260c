"""`python -m bench.faults` (`make faults`): does the box keep every acknowledged
message through crashes and power cuts?

N phones (asyncio WebSocket clients, default 20) chat in rooms and DMs with the
real service in production mode (gevent) on loopback. At a random moment of
each round (default 10 rounds) the box fails:

- **crash**: the service gets SIGKILL;
- **power cut** (root only): the service's data folder is a small ext4 file
  system in a loop device, mounted as the box mounts /data; the file system is
  shut down without flushing anything (FS_IOC_SHUTDOWN, as xfstests simulates
  a power failure), the service dies with it, then e2fsck and a fresh mount as
  at the next boot. Where that is impossible (not root, no loop devices) the
  variant is skipped and the output says why.

The service restarts on the same data folder; every phone reconnects with its
device token and `since`, fetches what it missed (`sync` while `more`), and
resends every message it never saw acknowledged, with the same id. Then every
conversation is read back and compared with what the phones sent and saw
acknowledged: acknowledged-but-missing, duplicates (one message id stored
twice), gaps in a conversation's seq, and messages a phone never received.
The result is a table per variant and a verdict; the exit status is 1 if
anything acknowledged is missing, doubled, or there is a gap.
"""
