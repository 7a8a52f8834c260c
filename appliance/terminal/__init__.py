"""Ahoy's terminal client: chat with the people on a box's network from a laptop.

A separate program from the service that runs on the box (the rest of
`appliance`): it shares only `appliance.protocol` with it. `ahoy` or
`python -m appliance.terminal` starts it; see docs/cli.md.

- `command`: the `ahoy` command line and `--send`
- `ui`: the curses chat screen; `text`: safe, measured, wrapped terminal text
- `boxclient`: the connection to a box; `boxes`: its address, or mDNS discovery
- `state`: the saved identity per box; `conversations`: messages and conversations
- `direct`: a chat with one other device over WebRTC, without a box
"""
