#!/usr/bin/env bash
# Two hosts (namespaces hA, hB joined by a veth underlay, MTU 1500), one
# client namespace each, TCP between the clients through VXLAN VNI 100:
#   l2sw:  l2sw on both hosts (vxlan port + ns plug)
#   linux: Linux vxlan device + kernel bridge on both hosts
# Interleaved rounds, iperf3 -t SECS per round (one TCP stream A -> B), then
# 200 pings A -> B; prints Gbit/s and the ping RTT p50 per round, the
# medians and the ratios (l2sw / linux), and the load average.
# Usage: bench/vxlan_two_host.sh [ROUNDS] [SECS]  (as root)
set -euo pipefail
ROUNDS=${1:-3}; SECS=${2:-3}
BIN=${L2SW:-target/release/l2sw}
S=vb$$
cleanup() {
  for n in a b; do "$BIN" --name $S$n shutdown >/dev/null 2>&1 || true; done
  sleep 0.5
  for ns in ${S}hA ${S}hB ${S}cA ${S}cB; do ip netns del $ns 2>/dev/null || true; done
}
trap cleanup EXIT
underlay() {
  ip netns add ${S}hA; ip netns add ${S}hB
  ip link add ${S}a netns ${S}hA type veth peer name ${S}b netns ${S}hB
  ip -n ${S}hA addr add 10.201.0.1/24 dev ${S}a; ip -n ${S}hB addr add 10.201.0.2/24 dev ${S}b
  for h in A B; do ip -n ${S}h$h link set lo up; done
  ip -n ${S}hA link set ${S}a up; ip -n ${S}hB link set ${S}b up
}
linux_host() { # host letter, local, remote, client ip
  local h=$1 loc=$2 rem=$3 cip=$4
  ip netns add ${S}c$h
  ip -n ${S}h$h link add vx100 type vxlan id 100 local $loc dstport 4789
  ip -n ${S}h$h link add br0 type bridge; ip -n ${S}h$h link set vx100 master br0
  ip -n ${S}h$h link add cp type veth peer name eth0 netns ${S}c$h
  ip -n ${S}h$h link set cp master br0
  for d in cp vx100 br0; do ip -n ${S}h$h link set $d up; done
  ip -n ${S}c$h link set eth0 mtu 1450; ip -n ${S}c$h addr add $cip/24 dev eth0; ip -n ${S}c$h link set eth0 up
  ip netns exec ${S}h$h bridge fdb append 00:00:00:00:00:00 dev vx100 dst $rem
}
l2sw_host() {
  local h=$1 loc=$2 rem=$3 cip=$4 n=$S$(echo $1 | tr AB ab)
  "$BIN" --name $n run >/dev/null 2>&1 &
  for _ in $(seq 50); do "$BIN" --name $n status >/dev/null 2>&1 && break; sleep 0.1; done
  "$BIN" --name $n port add vxlan vx100 --vni 100 --local $loc --remote $rem --netns ${S}h$h >/dev/null
  "$BIN" --name $n ns plug ${S}c$h --ip $cip/24 --mtu 1450 >/dev/null
}
setup() {
  underlay
  if [ "$1" = linux ]; then
    linux_host A 10.201.0.1 10.201.0.2 10.0.0.1; linux_host B 10.201.0.2 10.201.0.1 10.0.0.2
    # See docs/vxlan.md: inner checksums are left to a NIC a veth lacks.
    ip netns exec ${S}hA ethtool -K ${S}a tx off >/dev/null; ip netns exec ${S}hB ethtool -K ${S}b tx off >/dev/null
  else
    l2sw_host A 10.201.0.1 10.201.0.2 10.0.0.1; l2sw_host B 10.201.0.2 10.201.0.1 10.0.0.2
  fi
}
run_one() {
  setup $1
  ip netns exec ${S}cB iperf3 -s -1 -D; sleep 0.3
  local g; g=$(ip netns exec ${S}cA iperf3 -c 10.0.0.2 -t $SECS -J | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9,2))')
  # RTT p50 of the individual replies (ping's summary has no median).
  local rtt; rtt=$(ip netns exec ${S}cA ping -c 200 -i 0.002 10.0.0.2 | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$1 $g $rtt"
  cleanup
}
declare -a L X LR XR
for r in $(seq $ROUNDS); do
  for c in linux l2sw; do
    # $(...) waits for run_one's cleanup; `< <(...)` did not, so the next
    # round's namespaces collided with the last one's.
    out=$(run_one $c); read -r name g rtt <<<"$out"
    echo "round $r $name ${g} Gbit/s  ping p50 ${rtt} ms  (load $(cut -d' ' -f1-3 /proc/loadavg))"
    if [ $c = linux ]; then L+=($g); LR+=($rtt); else X+=($g); XR+=($rtt); fi
  done
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ml=$(med "${L[@]}"); mx=$(med "${X[@]}")
echo "median TCP: linux $ml Gbit/s, l2sw $mx Gbit/s, ratio $(python3 -c "print(round($mx/$ml,2))")"
rl=$(med "${LR[@]}"); rx=$(med "${XR[@]}")
echo "median ping p50: linux $rl ms, l2sw $rx ms, ratio $(python3 -c "print(round($rx/$rl,2))")"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
