/* SPDX-License-Identifier: GPL-2.0-only */
/* The decisions every backend shares, as pure functions of what a hook saw: which event a
 * freed entry is, what confirm's result means, which reason a drop carries, which counter
 * an event bumps, and when to wake the reader. No maps, no helpers, no kernel reads, so
 * that the same text compiles for BPF (included by common.bpf.h) and for the host, where
 * tests/unit/test_classify.cpp checks every case. Backends gather the inputs; the rules
 * live only here. */
#ifndef CTBPF_CLASSIFY_H
#define CTBPF_CLASSIFY_H

#include "ctbpf/event.h"

#ifdef __bpf__
/* One program per hook: the verifier sees each rule inlined where it is used. */
#define CTBPF_RULE static inline __attribute__((always_inline))
#else
#include <stdbool.h>
#define CTBPF_RULE static inline
#endif

/* ct->status bits (include/uapi/linux/netfilter/nf_conntrack_common.h, stable since 2.6).
 * Prefixed: the host's uapi headers declare the same names as enum constants. */
#define CTBPF_IPS_SEEN_REPLY (1UL << 1)
#define CTBPF_IPS_ASSURED (1UL << 2)
#define CTBPF_IPS_CONFIRMED (1UL << 3)
#define CTBPF_IPS_TEMPLATE (1UL << 11)

/* Netfilter verdicts: the low byte; the rest can carry an errno or queue number. */
#define CTBPF_NF_DROP 0
#define CTBPF_NF_VERDICT_MASK 0xff

/* What to report: kind 0 means nothing (not an event of ours). */
struct ctbpf_class {
	__u8 kind;   /* enum ctbpf_event_kind, or 0 */
	__u8 reason; /* enum ctbpf_reason */
};

CTBPF_RULE struct ctbpf_class ctbpf_class_of(__u8 kind, __u8 reason)
{
	struct ctbpf_class c = {kind, reason};

	return c;
}

/* What a hook knew when an entry was freed. */
struct ctbpf_free_facts {
	unsigned long status; /* ct->status at the free */
	bool announced;       /* its insert was announced and not yet confirmed (tracepoint backend) */
	bool expired;         /* ct->timeout already passed */
	bool evict_hooked;    /* an eviction hook (early_drop or __nf_conntrack_alloc) is attached... */
	bool in_evict;        /* ...and this CPU is inside it */
	bool in_conntrack;    /* this CPU is in conntrack's hook for a packet of the entry's netns */
};

/* A freed entry:
 *  - never confirmed: if its insert was announced, confirm resolved a clash by reusing the
 *    existing entry (kernel `clashres`); otherwise never ours (a rule dropped the packet, a
 *    template, or the function backends, which account for it at confirm's return);
 *  - confirmed and expired: destroy, timeout (gc or a lookup reaped it);
 *  - freed during eviction: early_drop. With the eviction hook that is exact (early_drop()
 *    picks its victims); without it, an unassured entry freed while this CPU runs
 *    conntrack's hook for its namespace, since only early_drop() frees such entries there
 *    (early_drop_list() skips assured ones);
 *  - else destroy, deleted (flush, conntrack -D, protocol kill, netns exit, gc eviction
 *    over 95% full, which the kernel does not count as early_drop either). */
CTBPF_RULE struct ctbpf_class ctbpf_classify_free(struct ctbpf_free_facts f)
{
	bool evicted;

	if (!(f.status & CTBPF_IPS_CONFIRMED))
		return f.announced ? ctbpf_class_of(CTBPF_EV_INSERT_FAILED, CTBPF_R_CLASH_RESOLVED)
				   : ctbpf_class_of(0, CTBPF_R_NONE);
	if (f.expired)
		return ctbpf_class_of(CTBPF_EV_DESTROY, CTBPF_R_TIMEOUT);
	evicted = f.evict_hooked ? f.in_evict : !(f.status & CTBPF_IPS_ASSURED) && f.in_conntrack;
	if (evicted)
		return ctbpf_class_of(CTBPF_EV_EARLY_DROP, CTBPF_R_NONE);
	return ctbpf_class_of(CTBPF_EV_DESTROY, CTBPF_R_DELETED);
}

/* After __nf_conntrack_confirm for a packet whose new entry we announced (or, in the
 * tracepoint backend, a NETFILTER_DROP of that packet with the entry still unconfirmed:
 * verdict NF_DROP):
 *  - NF_DROP: confirm refused the entry (kernel `insert_failed`);
 *  - accepted but the packet now carries another entry: the clash was resolved by reusing
 *    the existing one (kernel `clashres`, 5.6+ nf_ct_resolve_clash);
 *  - accepted and the entry is confirmed: the insert;
 *  - otherwise nothing (confirm let it through unconfirmed, e.g. a dying entry). */
CTBPF_RULE struct ctbpf_class ctbpf_classify_confirm(unsigned int verdict, bool skb_on_other_entry,
						     unsigned long status_after)
{
	if ((verdict & CTBPF_NF_VERDICT_MASK) == CTBPF_NF_DROP)
		return ctbpf_class_of(CTBPF_EV_INSERT_FAILED, CTBPF_R_CLASH_DROP);
	if (skb_on_other_entry)
		return ctbpf_class_of(CTBPF_EV_INSERT_FAILED, CTBPF_R_CLASH_RESOLVED);
	if (status_after & CTBPF_IPS_CONFIRMED)
		return ctbpf_class_of(CTBPF_EV_INSERT, CTBPF_R_NONE);
	return ctbpf_class_of(0, CTBPF_R_NONE);
}

/* A drop's reason as the kernel side knows it (see enum ctbpf_reason): table full when the
 * allocator hook saw __nf_conntrack_alloc fail during this nf_conntrack_in (it fails only
 * when the table is full and early_drop() freed nothing, or out of memory); no_entry when
 * the allocator is hooked and did not fail; otherwise not known here. */
CTBPF_RULE __u8 ctbpf_drop_reason(bool alloc_hooked, bool alloc_failed)
{
	if (!alloc_hooked)
		return CTBPF_R_NONE;
	return alloc_failed ? CTBPF_R_TABLE_FULL : CTBPF_R_NO_ENTRY;
}

#define CTBPF_IPPROTO_TCP 6

/* The entry state an event carries (struct ctbpf_event's ct_status, tcp_state, state_valid). */
struct ctbpf_state {
	__u16 status;
	__u8 tcp_state;
	__u8 valid;
};

/* What an event about `kind` says of its entry's state, from what the hook read: ct->status
 * (status_read: the read succeeded) and, for TCP, ct->proto.tcp.state (tcp_read: the field
 * exists in this kernel's BTF and was read). A drop has no entry, and a state half read is
 * not reported: all zero, not valid. An insert is
 * reported as confirmed even where it is seen just before confirm (tracepoint backend), so
 * that every backend says the same. Only the low 16 bits of the status are kept: the higher
 * ones are kernel-internal and have moved between versions. */
CTBPF_RULE struct ctbpf_state ctbpf_state_of(__u8 kind, __u8 proto, unsigned long status, bool status_read,
					     __u8 tcp_state, bool tcp_read)
{
	struct ctbpf_state s = {0, 0, 0};

	if (kind == CTBPF_EV_DROP || kind == 0 || !status_read)
		return s;
	if (proto == CTBPF_IPPROTO_TCP && !tcp_read)
		return s;
	if (kind == CTBPF_EV_INSERT)
		status |= CTBPF_IPS_CONFIRMED;
	s.status = (__u16)status;
	s.tcp_state = proto == CTBPF_IPPROTO_TCP ? tcp_state : 0;
	s.valid = 1;
	return s;
}

/* The counter an event bumps (insert_failed: by its reason). */
CTBPF_RULE enum ctbpf_counter ctbpf_counter_of(__u8 kind, __u8 reason)
{
	switch (kind) {
	case CTBPF_EV_INSERT: return CTBPF_C_INSERT;
	case CTBPF_EV_DROP: return CTBPF_C_DROP;
	case CTBPF_EV_EARLY_DROP: return CTBPF_C_EARLY_DROP;
	case CTBPF_EV_INSERT_FAILED:
		return reason == CTBPF_R_CLASH_RESOLVED ? CTBPF_C_CLASH_RESOLVED : CTBPF_C_INSERT_FAILED;
	default: return CTBPF_C_DESTROY;
	}
}

/* Records are submitted without a wake-up; wake the reader only as the waiting data
 * crosses the threshold, within a window of four records (CPUs reserve concurrently, so
 * one may step over the exact byte). Past the window: no wake-up, or a lagging reader would
 * be woken per record (0.58x of the insert rate, BENCHMARKS.md); the reader's 100 ms timer
 * covers a crossing that every CPU stepped over. `urgent` wakes regardless. */
#define CTBPF_WAKE_SPAN (4 * (sizeof(struct ctbpf_event) + 8)) /* 8: the ring's record header */

CTBPF_RULE bool ctbpf_wake_reader(bool urgent, __u64 avail, __u64 threshold)
{
	return urgent || (avail >= threshold && avail < threshold + CTBPF_WAKE_SPAN);
}

/* A drop wakes the reader at once (at most every 10 ms per CPU) when it may be the start of
 * a table-full storm that user space must see while the table is full: its reason is
 * table_full, or not known in the kernel (user space then reads the table's fill). A
 * kernel-known no_entry drop waits for the batch like any event. */
#define CTBPF_DROP_WAKE_NS 10000000ULL

CTBPF_RULE bool ctbpf_drop_urgent(__u8 reason, __u64 now_ns, __u64 last_wake_ns)
{
	return reason != CTBPF_R_NO_ENTRY && now_ns - last_wake_ns > CTBPF_DROP_WAKE_NS;
}

#endif /* CTBPF_CLASSIFY_H */
