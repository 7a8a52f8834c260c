#!/bin/sh
# busybox udhcpc's lease script for a simulated phone: address, route, and the box as DNS.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$subnet" dev "$interface"
    [ -z "${router:-}" ] || ip route replace default via "${router%% *}" dev "$interface"
    mkdir -p "/etc/netns/$AHOY_NETNS"
    : > "/etc/netns/$AHOY_NETNS/resolv.conf"
    for d in ${dns:-}; do echo "nameserver $d" >> "/etc/netns/$AHOY_NETNS/resolv.conf"; done
    echo "LEASE ip=$ip subnet=$subnet router=${router:-} dns=${dns:-}"
    ;;
esac
exit 0
