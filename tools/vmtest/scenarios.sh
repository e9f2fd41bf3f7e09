#!/bin/sh
# Runs inside the test VM, as root in its only network namespace: the scenarios of
# tests/scenario, once per backend in /etc/ctbpf-vm.conf (BACKENDS), each comparing
# `ctbpf events --json` totals (its last line) with the kernel's own counters:
# /proc/net/stat/nf_conntrack deltas, nf_conntrack_count and an nft `ct state new` counter.
# Prints one line per backend and scenario:
#   CTBPF-VM-RESULT kernel=K backend=B scenario=S pass=1|0 detail=name=got/want,...
. /etc/ctbpf-vm.conf
kernel=$(uname -r)
nft 'add table inet ctbpf_t; add chain inet ctbpf_t out { type filter hook output priority 0; }; add rule inet ctbpf_t out ct state new counter' ||
	echo "CTBPF-VM-RESULT kernel=$kernel backend=none scenario=boot pass=0 detail=nft-failed"
# The host's iproute2 by path: busybox sh runs its own `ip` applet first, which lacks nodad.
for i in 1 2 3; do /usr/sbin/ip -6 addr add fd00::1:$i/128 dev lo nodad; done
max0=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
udp0=$(cat /proc/sys/net/netfilter/nf_conntrack_udp_timeout)

# Sum of one column of /proc/net/stat/nf_conntrack (one hex row per CPU).
stat_sum() {
	awk -v col="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
		{ n = 0; v = tolower($c); for (j = 1; j <= length(v); j++) n = n * 16 + index("0123456789abcdef", substr(v, j, 1)) - 1; s += n }
		END { print s + 0 }' /proc/net/stat/nf_conntrack
}
count() { cat /proc/sys/net/netfilter/nf_conntrack_count; }
nft_new() { nft list chain inet ctbpf_t out | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }
loadgen() { ctbpf-loadgen "$@" > /tmp/loadgen.out; }
sources() { p=$1; n=$2; i=1; while [ $i -le $n ]; do printf ' --src %s%s' "$p" $i; i=$((i + 1)); done; }

# ctbpf in the background until it says it is watching.
ct_start() {
	: > /tmp/ev.err  # emptied here, not by the child: the wait below must not see the last run's line
	ctbpf events --json --backend "$backend" > /tmp/ev.out 2> /tmp/ev.err &
	ct_pid=$!
	i=0
	while ! grep -q watching /tmp/ev.err; do
		kill -0 $ct_pid 2>/dev/null || return 1
		i=$((i + 1)); [ $i -le 600 ] || return 1
		usleep 100000
	done
}
# SIGTERM; the last line of its output is the summary, with the exact kernel totals.
ct_stop() {
	usleep 300000
	kill -TERM $ct_pid; wait $ct_pid
	totals=$(tail -n 1 /tmp/ev.out | sed -n 's/.*"kernel":{\([^}]*\)}.*/\1/p')
	lost=$(tail -n 1 /tmp/ev.out | sed -n 's/.*"lost":\([0-9]*\).*/\1/p')
}
k() { echo "$totals" | sed -n "s/.*\"$1\":\(-*[0-9]*\).*/\1/p"; }
events() { grep "\"type\":\"$1\"" /tmp/ev.out | grep -c "$2"; }

# expect NAME GOT WANT: records both; any difference fails the scenario.
expect() {
	detail="$detail$1=$2/$3,"
	[ "$2" = "$3" ] || pass=0
}
begin() {
	scenario=$1 pass=1 detail= t0=$(date +%s)
	conntrack -F 2>/dev/null
	ct_start || { broken=1; kill $ct_pid 2>/dev/null; echo "CTBPF-VM-RESULT kernel=$kernel backend=$backend scenario=$scenario pass=0 detail=ctbpf-did-not-start:$(tr ' ' _ < /tmp/ev.err | head -c 300)"; return 1; }
}
end() {
	expect lost "$lost" 0
	echo "CTBPF-VM-RESULT kernel=$kernel backend=$backend scenario=$scenario pass=$pass detail=${detail%,} seconds=$(($(date +%s) - t0))"
}

many_sources() {
	n0=$(nft_new)
	begin many_sources || return
	for i in 1 2 3 4 5; do loadgen --src 127.0.1.$i --flows $((i * 10)); done
	new=$(($(nft_new) - n0)) entries=$(count)
	ct_stop
	expect nft_new "$new" 150
	expect insert "$(k insert)" "$new"
	expect count "$entries" 150
	expect insert_events "$(events insert 127.0.1.)" 150
	expect drop "$(k drop)" 0
	end
}

ipv6() {
	n0=$(nft_new)
	begin ipv6 || return
	loadgen --dst ::1 --flows 20 $(sources fd00::1: 3)
	new=$(($(nft_new) - n0)) entries=$(count)
	ct_stop
	expect nft_new "$new" 60
	expect insert "$(k insert)" "$new"
	expect count "$entries" 60
	expect ipv6_events "$(events insert '"src":"fd00::1:')" 60
	end
}

table_full() {
	echo 300 > /proc/sys/net/netfilter/nf_conntrack_max
	n0=$(nft_new) d0=$(stat_sum drop) e0=$(stat_sum early_drop)
	begin table_full || { echo "$max0" > /proc/sys/net/netfilter/nf_conntrack_max; return; }
	loadgen --flows 200 $(sources 127.0.1. 4)
	new=$(($(nft_new) - n0)) drops=$(($(stat_sum drop) - d0)) early=$(($(stat_sum early_drop) - e0)) entries=$(count)
	ct_stop
	echo "$max0" > /proc/sys/net/netfilter/nf_conntrack_max
	[ "$drops" -gt 0 ] || expect table_filled no yes
	# Filled, not necessarily to the last slot: a CI run on 6.1 ended at 299 of 300 with
	# every counter below exact on both backends (cause not pinned down). What ctbpf must
	# get right is that accounting, which uses the kernel's own count.
	[ "$entries" -ge 285 ] && [ "$entries" -le 300 ] || expect count "$entries" 285-300
	expect drop "$(k drop)" "$drops"
	expect early_drop "$(k early_drop)" "$early"
	expect insert "$(k insert)" $((entries + early))
	expect insert_vs_nft "$(k insert)" "$new"
	expect drop_events "$(events drop .)" "$drops"
	expect table_full_events "$(events drop table_full)" "$drops"
	expect early_drop_events "$(events early_drop .)" "$early"
	end
}

destroy_flush() {
	begin destroy_flush || return
	loadgen --flows 25 $(sources 127.0.1. 2)
	entries=$(count)
	conntrack -F 2>/dev/null
	after=$(count)
	ct_stop
	expect count "$entries" 50
	expect destroy "$(k destroy)" "$entries"
	expect deleted_events "$(events destroy '"reason":"deleted"')" "$entries"
	expect count_after "$after" 0
	end
}

destroy_timeout() {
	echo 1 > /proc/sys/net/netfilter/nf_conntrack_udp_timeout
	begin destroy_timeout || { echo "$udp0" > /proc/sys/net/netfilter/nf_conntrack_udp_timeout; return; }
	loadgen --flows 30 --src 127.0.1.1
	entries=$(count) i=0
	# Expired entries go at the next gc pass, or sooner when a table dump meets them: dump
	# to make that seconds rather than tens of seconds under emulation.
	while [ "$(count)" -gt 0 ] && [ $i -lt 600 ]; do
		usleep 200000; i=$((i + 1))
		conntrack -L > /dev/null 2>&1
	done
	after=$(count)
	ct_stop
	echo "$udp0" > /proc/sys/net/netfilter/nf_conntrack_udp_timeout
	expect count "$entries" 30
	expect count_after "$after" 0
	expect destroy "$(k destroy)" "$entries"
	expect timeout_events "$(events destroy '"reason":"timeout"')" "$entries"
	end
}

# Entries made through ctnetlink: only the fentry and kprobe backends see them.
netlink_insert() {
	begin netlink_insert || return
	for i in 1 2 3; do
		conntrack -I -p udp -s 10.9.9.$i -d 10.9.9.254 --sport 1000 --dport 2000 -t 60 2>/dev/null
	done
	entries=$(count)
	ct_stop
	expect count "$entries" 3
	expect insert "$(k insert)" "$entries"
	end
}

for backend in $BACKENDS; do
	broken=
	many_sources
	[ -z "$broken" ] || continue  # ctbpf cannot start with this backend: reported once
	ipv6
	table_full
	destroy_flush
	destroy_timeout
	[ "$backend" = tracepoint ] || netlink_insert
done
conntrack -F 2>/dev/null
