#!/usr/bin/env bash
# EVPN convergence: how long from a new MAC speaking on host A until host
# B's kernel bridge holds it as a BGP-installed (extern_learn) entry.
# Host B is always FRR (zebra + bgpd) over a Linux bridge + vxlan device
# (nolearning, advertise-all-vni). Host A is one of:
#   l2sw:  l2sw (vxlan port, ns plug) + gobgpd, `l2sw evpn enable`
#   linux: the same as B, FRR over a Linux bridge
# Both fabrics exist at once (own namespaces, iBGP AS 65000 each); rounds
# alternate between them. Each round gives A's client a fresh MAC, notes the
# time, sends one ARP request from it, and polls B's `bridge fdb show`
# every ~10 ms. Prints ms per round and the medians.
# Usage: bench/evpn_convergence.sh [ROUNDS]   (as root, after cargo build --release)
set -euo pipefail
ROUNDS=${1:-10}
BIN=${L2SW:-target/release/l2sw}
S=ec$$
DIR=$(mktemp -d /tmp/l2sw-evpn-bench.XXXXXX)
chmod 755 "$DIR"   # zebra runs as frr and must reach its own directory inside
PIDS=()
cleanup() {
  "$BIN" --name ${S}sw --run-dir $DIR/run shutdown >/dev/null 2>&1 || true
  sleep 1
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$DIR"/*/*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.5
  for ns in $(ip netns list | awk '{print $1}' | grep "^${S}" || true); do ip netns del "$ns"; done
  rm -rf "$DIR"
}
trap cleanup EXIT

underlay() { # fabric
  local f=$1
  ip netns add ${S}${f}A; ip netns add ${S}${f}B
  ip link add ${S}${f}a netns ${S}${f}A type veth peer name ${S}${f}b netns ${S}${f}B
  ip -n ${S}${f}A addr add 10.201.0.1/24 dev ${S}${f}a
  ip -n ${S}${f}B addr add 10.201.0.2/24 dev ${S}${f}b
  for h in A B; do ip -n ${S}${f}$h link set lo up; done
  ip -n ${S}${f}A link set ${S}${f}a up; ip -n ${S}${f}B link set ${S}${f}b up
  ip netns exec ${S}${f}B ethtool -K ${S}${f}b tx off >/dev/null
}
linux_bridge() { # namespace, local ip
  local ns=$1 loc=$2
  ip -n $ns link add vx100 type vxlan id 100 local $loc dstport 4789 nolearning
  ip -n $ns link add br0 type bridge
  ip -n $ns link set vx100 master br0
  ip netns exec $ns bridge link set dev vx100 learning off
  for d in vx100 br0; do ip -n $ns link set $d up; done
}
client() { # host namespace, client namespace, ip
  ip netns add $2
  ip -n $1 link add ${2: -3}h type veth peer name eth0 netns $2
  ip -n $1 link set ${2: -3}h master br0; ip -n $1 link set ${2: -3}h up
  ip -n $2 addr add $3/24 dev eth0; ip -n $2 link set eth0 up
}
frr() { # namespace, router id, neighbour, dir
  local ns=$1 rid=$2 nb=$3 d=$4
  mkdir -p $d; chown frr:frr $d
  printf 'frr defaults datacenter\nrouter bgp 65000\n bgp router-id %s\n no bgp default ipv4-unicast\n neighbor %s remote-as 65000\n address-family l2vpn evpn\n  neighbor %s activate\n  advertise-all-vni\n exit-address-family\n' \
    $rid $nb $nb > $d/bgpd.conf
  ip netns exec $ns /usr/lib/frr/zebra -d -P 0 -i $d/zebra.pid -z $d/zserv.api --vty_socket $d -f /dev/null --log file:$d/zebra.log
  for _ in $(seq 50); do [ -S $d/zserv.api ] && break; sleep 0.1; done
  ip netns exec $ns /usr/lib/frr/bgpd -d -S -P 0 -i $d/bgpd.pid -z $d/zserv.api --vty_socket $d -f $d/bgpd.conf --log file:$d/bgpd.log
}

# Fabric 1: l2sw + gobgpd on A.
underlay 1
linux_bridge ${S}1B 10.201.0.2
client ${S}1B ${S}1cB 10.0.0.2
frr ${S}1B 10.201.0.2 10.201.0.1 $DIR/1B
printf '[global.config]\n  as = 65000\n  router-id = "10.201.0.1"\n  local-address-list = ["10.201.0.1"]\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = "10.201.0.2"\n    peer-as = 65000\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = "l2vpn-evpn"\n' > $DIR/gobgpd.toml
ip netns exec ${S}1A gobgpd -f $DIR/gobgpd.toml --api-hosts 127.0.0.1:50051 --pprof-disable -p > $DIR/gobgpd.log 2>&1 &
PIDS+=($!)
mkdir -p $DIR/run
"$BIN" --name ${S}sw --run-dir $DIR/run run > $DIR/l2sw.log 2>&1 &
PIDS+=($!)
L="$BIN --name ${S}sw --run-dir $DIR/run"
$L status --wait 10 >/dev/null
$L port add vxlan vx100 --vni 100 --local 10.201.0.1 --netns ${S}1A --learning off >/dev/null
$L ns plug ${S}1cA --ip 10.0.0.1/24 --mtu 1450 >/dev/null
$L evpn enable --gobgp 127.0.0.1:50051 --netns ${S}1A --asn 65000 >/dev/null

# Fabric 2: FRR + Linux bridge on A.
underlay 2
for h in A B; do linux_bridge ${S}2$h 10.201.0.$([ $h = A ] && echo 1 || echo 2); done
client ${S}2B ${S}2cB 10.0.0.2
client ${S}2A ${S}2cA 10.0.0.1
frr ${S}2B 10.201.0.2 10.201.0.1 $DIR/2B
frr ${S}2A 10.201.0.1 10.201.0.2 $DIR/2A

# Both fabrics up: B's client reachable from A's.
for f in 1 2; do
  ok=0
  for _ in $(seq 60); do
    if ip netns exec ${S}${f}cA ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.5
  done
  [ $ok = 1 ] || { echo "fabric $f did not converge" >&2; exit 1; }
done

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
round() { # fabric, round number -> ms
  local f=$1 i=$2
  local mac
  mac=$(printf '02:ec:%02x:%02x:%02x:%02x' $f $(( (i >> 16) & 255 )) $(( (i >> 8) & 255 )) $(( i & 255 )))
  ip -n ${S}${f}cA link set eth0 address $mac
  local t0; t0=$(now_ms)
  ip netns exec ${S}${f}cA ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1 &
  local deadline=$(( t0 + 10000 ))
  while :; do
    if ip netns exec ${S}${f}B bridge fdb show dev vx100 2>/dev/null | grep -q "^$mac .*extern_learn"; then
      echo $(( $(now_ms) - t0 )); break
    fi
    [ "$(now_ms)" -lt $deadline ] || { echo timeout; break; }
    sleep 0.01
  done
  wait
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "round  l2sw+gobgpd_ms  linux+frr_ms"
: > $DIR/r1; : > $DIR/r2
for i in $(seq $ROUNDS); do
  a=$(round 1 $i); b=$(round 2 $i)
  echo "$i  $a  $b"
  [ "$a" = timeout ] || echo $a >> $DIR/r1
  [ "$b" = timeout ] || echo $b >> $DIR/r2
  sleep 0.5
done
echo "median  $(median < $DIR/r1)  $(median < $DIR/r2)"
echo "max     $(sort -n $DIR/r1 | tail -1)  $(sort -n $DIR/r2 | tail -1)"
