/* SPDX-License-Identifier: GPL-2.0-only */
/* Maps, configuration and event helpers shared by every attach backend.
 * A backend's programs only decide *where* an event is seen; what is counted and how an
 * event is filled and delivered lives here, so all backends report the same thing. */
#ifndef CTBPF_COMMON_BPF_H
#define CTBPF_COMMON_BPF_H

#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "ctbpf/event.h"
#include "classify.h"

#define AF_INET 2
#define AF_INET6 10
#define NF_ACCEPT 1
#define NFCT_INFOMASK 7UL
#define IP_CT_IS_REPLY 3

/* Maps and settings below are weak: every backend's .bpf.c includes this header, and
 * linking them into one object keeps a single copy of each. */

/* Set by user space before load. */
__weak const volatile __u64 ct_id_key = 0;          /* hides kernel addresses in ct_id */
__weak const volatile __u32 wakeup_bytes = 1 << 18; /* wake the reader once this much waits */
/* --all-netns with a global backend (fentry, kprobe): every namespace, including those
 * made later, is reported from its first event; watched_netns is not consulted. */
__weak const volatile bool watch_all_netns = false;

/* Bumped whenever a network namespace may have been made (clone with CLONE_NEWNET,
 * unshare): user space reads it through the mmapped .bss each tick and looks for new
 * namespaces only when it moved, instead of scanning every process every second. */
__weak __u64 netns_created = 0;
/* bpf_get_current_task_btf() exists (5.11+): set by user space from the kernel version. */
__weak const volatile bool task_btf = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by user space before load */
} events SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CTBPF_C__COUNT);
	__type(key, __u32);
	__type(value, __s64);
} counters SEC(".maps") __weak;

/* Network namespaces (inode numbers) being watched; global hooks filter on it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} watched_netns SEC(".maps") __weak;

static __always_inline bool netns_watched(__u32 netns)
{
	return watch_all_netns || bpf_map_lookup_elem(&watched_netns, &netns) != 0;
}

static __always_inline void count(enum ctbpf_counter c, __s64 delta)
{
	__u32 key = c;
	__s64 *v = bpf_map_lookup_elem(&counters, &key);

	/* Atomic even though per-CPU: a softirq program can interrupt a process-context one. */
	if (v)
		__sync_fetch_and_add(v, delta);
}

static __always_inline struct ctbpf_event *event_reserve(__u8 kind)
{
	struct ctbpf_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(CTBPF_C_LOST, 1);
		if (kind == CTBPF_EV_DROP)
			count(CTBPF_C_LOST_DROP, 1);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->ts_ns = bpf_ktime_get_ns();
	e->cpu = bpf_get_smp_processor_id();
	return e;
}

/* Waking the reader per record is what costs throughput in a storm: submit silently and
 * wake it only once a batch is waiting (classify.h); the reader also drains on a timer. */
static __always_inline void event_submit_flags(struct ctbpf_event *e, bool urgent)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	bpf_ringbuf_submit(e, ctbpf_wake_reader(urgent, avail, wakeup_bytes) ? BPF_RB_FORCE_WAKEUP
									      : BPF_RB_NO_WAKEUP);
}

static __always_inline void event_submit(struct ctbpf_event *e)
{
	event_submit_flags(e, false);
}

static __always_inline __u32 ct_netns(const struct nf_conn *ct)
{
	return BPF_CORE_READ(ct, ct_net.net, ns.inum);
}

/* Original-direction tuple, zone and netns of an entry. */
static __always_inline void event_fill_ct(struct ctbpf_event *e, const struct nf_conn *ct)
{
	const struct nf_conntrack_tuple *t = &ct->tuplehash[0].tuple;

	e->ct_id = (__u64)(unsigned long)ct ^ ct_id_key;
	e->netns = ct_netns(ct);
	if (bpf_core_field_exists(ct->zone))
		e->zone = BPF_CORE_READ(ct, zone.id);
	e->family = BPF_CORE_READ(t, src.l3num);
	e->proto = BPF_CORE_READ(t, dst.protonum);
	e->sport = BPF_CORE_READ(t, src.u.all);
	e->dport = BPF_CORE_READ(t, dst.u.all);
	bpf_core_read(e->src, sizeof(e->src), &t->src.u3);
	bpf_core_read(e->dst, sizeof(e->dst), &t->dst.u3);
}

/* The entry's status and TCP state (after event_fill_ct: it looks at the protocol). Where
 * nf_conn comes from module BTF (nf_conntrack built as a module, Debian's 6.1 and 6.12)
 * libbpf resolves these against that module's types, as it does the tuple; a kernel whose
 * BTF lacks proto.tcp.state gets the field check's constant 0 and the read is left out
 * (its TCP events then carry no state rather than failing the load). */
static __always_inline void event_fill_state(struct ctbpf_event *e, const struct nf_conn *ct)
{
	unsigned long status = 0;
	bool status_read, tcp_read = false;
	struct ctbpf_state s;
	__u8 tcp = 0;

	status_read = bpf_core_read(&status, sizeof(status), &ct->status) == 0;
	if (e->proto == CTBPF_IPPROTO_TCP && bpf_core_field_exists(ct->proto.tcp.state))
		tcp_read = bpf_core_read(&tcp, sizeof(tcp), &ct->proto.tcp.state) == 0;
	s = ctbpf_state_of(e->kind, e->proto, status, status_read, tcp, tcp_read);
	e->ct_status = s.status;
	e->tcp_state = s.tcp_state;
	e->state_valid = s.valid;
}

#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12

/* The local process behind a packet (after the netns is filled). A locally originated
 * packet has a socket and no input interface (skb_iif is set on receive, so forwarded and
 * received packets have one). The socket's cgroup is exact in any context; the running
 * task is named only if it is in the socket's cgroup: a packet sent from softirq (a TCP
 * retransmission from a timer) runs over whatever task was interrupted, which that test
 * rejects unless it is a sibling in the same cgroup. This runs for every insert and every
 * drop: helpers rather than walking the task struct, and where `skb` is a BTF pointer (the
 * tracepoint backend's netfilter and tp_btf programs) plain loads rather than probe reads
 * (a probe read costs tens of ns: BENCHMARKS.md, "The process behind the entries"). */
struct ctbpf_sock_facts {
	__u64 cgroup;      /* the socket's cgroup id; 0: not readable (before 5.15) */
	bool local;        /* a full socket of a locally originated packet */
};

static __always_inline struct ctbpf_sock_facts sock_facts_btf(const struct sk_buff *skb)
{
	struct ctbpf_sock_facts f = {};
	struct sock *sk = skb->sk;
	__u8 state;

	if (!sk || skb->skb_iif)
		return f;
	/* Request and time-wait sockets are not full sockets: no cgroup data. */
	state = sk->__sk_common.skc_state;
	if (state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV)
		return f;
	f.local = true;
	if (bpf_core_field_exists(sk->sk_cgrp_data.cgroup)) {
		struct cgroup *cg = sk->sk_cgrp_data.cgroup;

		if (cg)
			f.cgroup = cg->kn->id;
	}
	return f;
}

static __always_inline struct ctbpf_sock_facts sock_facts_probe(const struct sk_buff *skb)
{
	struct ctbpf_sock_facts f = {};
	struct sock *sk = BPF_CORE_READ(skb, sk);
	__u8 state;

	if (!sk || BPF_CORE_READ(skb, skb_iif))
		return f;
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV)
		return f;
	f.local = true;
	if (bpf_core_field_exists(sk->sk_cgrp_data.cgroup))
		f.cgroup = BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
	return f;
}

static __always_inline void event_fill_process(struct ctbpf_event *e, struct ctbpf_sock_facts f)
{
	__u64 task_cg;

	if (!f.local)
		return;
	if (task_btf) {
		/* One helper and plain loads. Three helpers (cgroup id, pid, comm) cost about
		 * 250 ns per event on these machines, as much as the rest of the insert path. */
		struct task_struct *t = bpf_get_current_task_btf();

		task_cg = t->cgroups->dfl_cgrp->kn->id;
		/* Before 5.15 the socket's cgroup is not read: the sending task's, if it is in
		 * the packet's namespace (then it is the sender, or a task of that namespace). */
		if (!f.cgroup) {
			if (t->nsproxy->net_ns->ns.inum != e->netns)
				return;
			f.cgroup = task_cg;
		}
		e->cgroup = f.cgroup;
		if (task_cg != f.cgroup)
			return;
		e->pid = t->tgid;
		__builtin_memcpy(e->comm, t->comm, sizeof(e->comm));
		return;
	}
	/* 5.10: no bpf_get_current_task_btf (5.11); helpers and probe reads. */
	task_cg = bpf_get_current_cgroup_id();
	if (!f.cgroup) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		if (BPF_CORE_READ(task, nsproxy, net_ns, ns.inum) != e->netns)
			return;
		f.cgroup = task_cg;
	}
	e->cgroup = f.cgroup;
	if (task_cg != f.cgroup)
		return;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* Counts an event about an entry and delivers it; `skb` (insert: the packet confirmed)
 * names the local process behind it, if any; `btf`: `skb` is a BTF pointer. */
static __always_inline void report_ct_skb(__u8 kind, const struct nf_conn *ct, __u8 reason,
					  const struct sk_buff *skb, bool btf)
{
	struct ctbpf_event *e;

	count(ctbpf_counter_of(kind, reason), 1);
	e = event_reserve(kind);
	if (e) {
		event_fill_ct(e, ct);
		event_fill_state(e, ct);
		if (skb)
			event_fill_process(e, btf ? sock_facts_btf(skb) : sock_facts_probe(skb));
		e->reason = reason;
		event_submit(e);
	}
}

static __always_inline void report_ct(__u8 kind, const struct nf_conn *ct, __u8 reason)
{
	report_ct_skb(kind, ct, reason, 0, false);
}

/* The insert announced for this entry did not happen: take it back, then say why. Every
 * backend reports a failed insert this way, so totals and event streams agree. */
static __always_inline void report_insert_failed(const struct nf_conn *ct, __u8 reason)
{
	count(CTBPF_C_INSERT, -1);
	report_ct(CTBPF_EV_INSERT_FAILED, ct, reason);
}

/* An entry freed while its timeout is in the past was reaped because it expired. */
static __always_inline bool ct_expired(const struct nf_conn *ct)
{
	__u32 timeout = BPF_CORE_READ(ct, timeout);

	return (__s32)(timeout - (__u32)bpf_jiffies64()) <= 0;
}

/* Tuple of a packet that has no entry (a drop), read from its headers. */
static __always_inline void event_fill_skb(struct ctbpf_event *e, const struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned char *nh = head + BPF_CORE_READ(skb, network_header);
	unsigned char *l4;
	__u8 b[4];

	if (bpf_probe_read_kernel(b, 1, nh))
		return;
	if ((b[0] >> 4) == 4) {
		e->family = AF_INET;
		bpf_probe_read_kernel(&e->proto, 1, nh + 9);
		bpf_probe_read_kernel(e->src, 4, nh + 12);
		bpf_probe_read_kernel(e->dst, 4, nh + 16);
		l4 = nh + (b[0] & 0xf) * 4;
	} else if ((b[0] >> 4) == 6) {
		e->family = AF_INET6;
		bpf_probe_read_kernel(&e->proto, 1, nh + 6);
		bpf_probe_read_kernel(e->src, 16, nh + 8);
		bpf_probe_read_kernel(e->dst, 16, nh + 24);
		l4 = nh + 40; /* extension headers are not walked: ports stay 0 behind them */
	} else {
		return;
	}
	if (bpf_probe_read_kernel(b, 4, l4))
		return;
	switch (e->proto) {
	case 6: case 17: case 33: case 132: case 136: /* tcp udp dccp sctp udplite */
		__builtin_memcpy(&e->sport, b, 2);
		__builtin_memcpy(&e->dport, b + 2, 2);
		break;
	case 1: case 58: /* icmp, icmpv6: id as sport, type/code as dport (as conntrack does) */
		__builtin_memcpy(&e->dport, b, 2);
		bpf_probe_read_kernel(&e->sport, 2, l4 + 4);
		break;
	}
}

#endif /* CTBPF_COMMON_BPF_H */
