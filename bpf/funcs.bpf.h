/* SPDX-License-Identifier: GPL-2.0-only */
/* What the fentry and kprobe backends share: they hook the same conntrack functions
 * (user space picks which, per kernel, and points the programs at them), so the meaning
 * of each hook lives here and fentry.bpf.c / kprobe.bpf.c only unpack arguments.
 *
 *  insert         __nf_conntrack_confirm returns NF_ACCEPT with the packet's entry, new at
 *                 entry, now confirmed; if the packet left with another entry, the clash
 *                 was resolved by reusing it (insert taken back, as the tracepoint backend
 *                 does); NF_DROP: confirm refused it. nf_conntrack_hash_check_insert
 *                 returning 0: an entry made through ctnetlink, never on the packet path.
 *  drop           nf_conntrack_in returns NF_DROP and the packet has no entry; reason
 *                 table_full if an __nf_conntrack_alloc failed meanwhile (table full or
 *                 ENOMEM), no_entry if it did not, none if the allocator is not hooked.
 *  early_drop     a confirmed entry freed while this CPU is inside early_drop() (or
 *                 __nf_conntrack_alloc); without either, the tracepoint backend's rule.
 *  destroy        any other free of a confirmed entry (nf_conntrack_free or nf_ct_destroy),
 *                 reason timeout if it had expired, else deleted.
 *
 * These hooks are global: everything is filtered on watched_netns. A kretprobe has no
 * arguments, so calls are paired per CPU by nesting depth: conntrack does not sleep, and a
 * softirq over process context nests. Calls nested deeper than FN_FRAMES are not tracked
 * (counted in CTBPF_C_OVERFLOW). The decisions themselves are classify.h's. */
#ifndef CTBPF_FUNCS_BPF_H
#define CTBPF_FUNCS_BPF_H

#include "common.bpf.h"

#define FN_FRAMES 4
#define MAX_ERRNO 4095

/* Weak, like common.bpf.h's: both backends' files include this header. */

/* Set by user space before load: an eviction hook (early_drop or __nf_conntrack_alloc)
 * and the allocator's return are attached. */
__weak const volatile bool fn_evict_hooked = false;
__weak const volatile bool fn_alloc_hooked = false;

struct fn_state {
	__u64 in_skb[FN_FRAMES];         /* nf_conntrack_in calls in progress */
	__u32 in_netns[FN_FRAMES];
	__u8 in_alloc_failed[FN_FRAMES];
	__u32 in_depth;
	__u64 cf_ct[FN_FRAMES];          /* __nf_conntrack_confirm calls: entry it may insert, or 0 */
	__u64 cf_skb[FN_FRAMES];
	__u32 cf_depth;
	__u32 evict_depth;               /* inside early_drop() */
	__u64 nl_ct;                     /* nf_conntrack_hash_check_insert in progress */
	__u64 last_drop_wake_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fn_state);
} fn_states SEC(".maps") __weak;

static __always_inline struct fn_state *fn_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&fn_states, &zero);
}

static __always_inline bool fn_watched(__u32 netns)
{
	return netns_watched(netns);
}

static __always_inline const struct nf_conn *skb_ct(const struct sk_buff *skb)
{
	return (const struct nf_conn *)(BPF_CORE_READ(skb, _nfct) & ~NFCT_INFOMASK);
}

static __always_inline void fn_insert(const struct nf_conn *ct, const struct sk_buff *skb)
{
	report_ct_skb(CTBPF_EV_INSERT, ct, CTBPF_R_NONE, skb, false);
}

/* Reported as the tracepoint backend does: the insert, then its taking back. */
static __always_inline void fn_insert_failed(const struct nf_conn *ct, __u8 reason, const struct sk_buff *skb)
{
	fn_insert(ct, skb);
	report_insert_failed(ct, reason);
}

/* nf_conntrack_in(skb, state) */
static __always_inline void fn_in_enter(const struct sk_buff *skb, const struct nf_hook_state *state)
{
	struct fn_state *st = fn_state();
	__u32 d;

	if (!st)
		return;
	d = st->in_depth++;
	if (d < FN_FRAMES) {
		st->in_skb[d] = (__u64)(unsigned long)skb;
		st->in_netns[d] = BPF_CORE_READ(state, net, ns.inum);
		st->in_alloc_failed[d] = 0;
	} else {
		count(CTBPF_C_OVERFLOW, 1);
	}
}

static __always_inline void fn_in_exit(unsigned int verdict)
{
	struct fn_state *st = fn_state();
	const struct sk_buff *skb;
	struct ctbpf_event *e;
	__u8 why;
	__u32 d;

	if (!st || !st->in_depth)
		return;
	d = --st->in_depth;
	if (d >= FN_FRAMES || (verdict & CTBPF_NF_VERDICT_MASK) != CTBPF_NF_DROP)
		return;
	skb = (const struct sk_buff *)st->in_skb[d];
	/* Dropped without an entry: conntrack could not create one (kernel `drop`). */
	if (BPF_CORE_READ(skb, _nfct) || !fn_watched(st->in_netns[d]))
		return;
	why = ctbpf_drop_reason(fn_alloc_hooked, st->in_alloc_failed[d]);
	count(CTBPF_C_DROP, 1);
	e = event_reserve(CTBPF_EV_DROP);
	if (e) {
		bool urgent = ctbpf_drop_urgent(why, e->ts_ns, st->last_drop_wake_ns);

		if (urgent)
			st->last_drop_wake_ns = e->ts_ns;
		e->netns = st->in_netns[d];
		e->reason = why;
		event_fill_skb(e, skb);
		event_fill_process(e, sock_facts_probe(skb));
		event_submit_flags(e, urgent);
	}
}

/* __nf_conntrack_alloc returned: an ERR_PTR means table full or out of memory. */
static __always_inline void fn_alloc_exit(unsigned long ret)
{
	struct fn_state *st = fn_state();
	__u32 d;

	if (!st || ret < (unsigned long)-MAX_ERRNO)
		return;
	d = st->in_depth;
	if (d > 0 && d <= FN_FRAMES)
		st->in_alloc_failed[d - 1] = 1;
}

/* __nf_conntrack_confirm(skb): remember the entry it may insert. */
static __always_inline void fn_confirm_enter(const struct sk_buff *skb)
{
	struct fn_state *st = fn_state();
	unsigned long nfct = BPF_CORE_READ(skb, _nfct);
	const struct nf_conn *ct = (const struct nf_conn *)(nfct & ~NFCT_INFOMASK);
	__u32 d;

	if (!st)
		return;
	/* As in the tracepoint backend: an original-direction packet of a new entry. */
	if (!ct || (nfct & NFCT_INFOMASK) >= IP_CT_IS_REPLY ||
	    (BPF_CORE_READ(ct, status) & (CTBPF_IPS_CONFIRMED | CTBPF_IPS_TEMPLATE)) || !fn_watched(ct_netns(ct)))
		ct = 0;
	d = st->cf_depth++;
	if (d < FN_FRAMES) {
		st->cf_ct[d] = (__u64)(unsigned long)ct;
		st->cf_skb[d] = (__u64)(unsigned long)skb;
	} else {
		count(CTBPF_C_OVERFLOW, 1);
	}
}

static __always_inline void fn_confirm_exit(int verdict)
{
	struct fn_state *st = fn_state();
	const struct nf_conn *ct;
	const struct sk_buff *skb;
	unsigned long status = 0;
	struct ctbpf_class c;
	bool dropped, other;
	__u32 d;

	if (!st || !st->cf_depth)
		return;
	d = --st->cf_depth;
	if (d >= FN_FRAMES)
		return;
	ct = (const struct nf_conn *)st->cf_ct[d];
	skb = (const struct sk_buff *)st->cf_skb[d];
	if (!ct)
		return;
	/* Kernel reads only where the rule looks at them: this runs for every new entry. */
	dropped = (verdict & CTBPF_NF_VERDICT_MASK) == CTBPF_NF_DROP;
	other = !dropped && skb_ct(skb) != ct;
	if (!dropped && !other)
		status = BPF_CORE_READ(ct, status);
	c = ctbpf_classify_confirm(verdict, other, status);
	if (c.kind == CTBPF_EV_INSERT_FAILED)
		fn_insert_failed(ct, c.reason, skb);
	else if (c.kind == CTBPF_EV_INSERT)
		fn_insert(ct, skb);
}

/* nf_conntrack_hash_check_insert(ct) returned 0: inserted through ctnetlink. */
static __always_inline void fn_netlink_inserted(const struct nf_conn *ct, int ret)
{
	if (ret == 0 && ct && fn_watched(ct_netns(ct)))
		fn_insert(ct, 0);
}

static __always_inline void fn_evict_enter(void)
{
	struct fn_state *st = fn_state();

	if (st)
		st->evict_depth++;
}

static __always_inline void fn_evict_exit(void)
{
	struct fn_state *st = fn_state();

	if (st && st->evict_depth)
		st->evict_depth--;
}

/* Without an eviction hook: the tracepoint backend's rule, an unassured entry freed while
 * this CPU runs conntrack's hook for a packet of the same namespace. */
static __always_inline bool fn_in_ct(const struct fn_state *st, __u32 netns)
{
	int i;

	for (i = 0; i < FN_FRAMES; i++)
		if (i < st->in_depth && st->in_netns[i] == netns)
			return true;
	return false;
}

/* An entry is freed (nf_conntrack_free, nf_ct_destroy): early drop or destroy. An entry
 * never confirmed is not reported here: confirm's return already accounted for it. */
static __always_inline void fn_freed(const struct nf_conn *ct)
{
	struct fn_state *st = fn_state();
	struct ctbpf_free_facts facts = {};
	struct ctbpf_class c;
	__u32 netns;

	if (!st || !ct)
		return;
	facts.status = BPF_CORE_READ(ct, status);
	if (!(facts.status & CTBPF_IPS_CONFIRMED))
		return;
	netns = ct_netns(ct);
	if (!fn_watched(netns))
		return;
	facts.expired = ct_expired(ct);
	facts.evict_hooked = fn_evict_hooked;
	facts.in_evict = st->evict_depth > 0;
	facts.in_conntrack = !fn_evict_hooked && fn_in_ct(st, netns);
	c = ctbpf_classify_free(facts);
	if (c.kind)
		report_ct(c.kind, ct, c.reason);
}

#endif /* CTBPF_FUNCS_BPF_H */
