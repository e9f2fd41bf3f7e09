/* What the fentry and kprobe backends share: they hook the same conntrack functions
 * (user space picks which, per kernel, and points the programs at them), so the meaning
 * of each hook lives here and fentry.bpf.c / kprobe.bpf.c only unpack arguments.
 *
 *  insert         __nf_conntrack_confirm returns NF_ACCEPT with the packet's entry, new at
 *                 entry, now confirmed; if the packet left with another entry, the clash
 *                 was resolved by reusing it (insert taken back, as the tracepoint backend
 *                 does); NF_DROP: confirm refused it. nf_conntrack_hash_check_insert
 *                 returning 0: an entry made through ctnetlink, never on the packet path.
 *  drop           nf_conntrack_in returns NF_DROP and the packet has no entry; an
 *                 __nf_conntrack_alloc that failed meanwhile marks it table full/ENOMEM.
 *  early_drop     a confirmed entry freed while this CPU is inside early_drop() (or
 *                 __nf_conntrack_alloc); without either, the tracepoint backend's rule.
 *  destroy        any other free of a confirmed entry (nf_conntrack_free or nf_ct_destroy),
 *                 reason timeout if it had expired, else deleted.
 *
 * These hooks are global: everything is filtered on watched_netns. A kretprobe has no
 * arguments, so calls are paired per CPU by nesting depth: conntrack does not sleep, and a
 * softirq over process context nests. */
#ifndef CTBPF_FUNCS_BPF_H
#define CTBPF_FUNCS_BPF_H

#include "common.bpf.h"

#define FN_FRAMES 4
#define NF_DROP 0
#define NF_VERDICT_MASK 0xff
#define MAX_ERRNO 4095

/* Weak, like common.bpf.h's: both backends' files include this header. */

/* Set by user space before load: an eviction hook (early_drop or __nf_conntrack_alloc)
 * and the allocator's return are attached. */
__weak const volatile bool fn_evict_hooked = false;
__weak const volatile bool fn_alloc_hooked = false;

/* Drops whose entry allocation failed: table full (or out of memory). */
__weak __s64 fn_table_full_drops = 0;

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
	return bpf_map_lookup_elem(&watched_netns, &netns) != 0;
}

static __always_inline const struct nf_conn *skb_ct(const struct sk_buff *skb)
{
	return (const struct nf_conn *)(BPF_CORE_READ(skb, _nfct) & ~NFCT_INFOMASK);
}

static __always_inline void fn_emit_ct(__u8 kind, const struct nf_conn *ct, __u8 reason)
{
	struct ctbpf_event *e = event_reserve(kind);

	if (e) {
		event_fill_ct(e, ct);
		e->reason = reason;
		event_submit(e);
	}
}

static __always_inline void fn_insert(const struct nf_conn *ct)
{
	count(CTBPF_C_INSERT, 1);
	fn_emit_ct(CTBPF_EV_INSERT, ct, CTBPF_R_NONE);
}

/* Reported as the tracepoint backend does: the insert, then its taking back. */
static __always_inline void fn_insert_failed(const struct nf_conn *ct, __u8 reason)
{
	fn_insert(ct);
	count(CTBPF_C_INSERT, -1);
	count(reason == CTBPF_R_CLASH_RESOLVED ? CTBPF_C_CLASH_RESOLVED : CTBPF_C_INSERT_FAILED, 1);
	fn_emit_ct(CTBPF_EV_INSERT_FAILED, ct, reason);
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
	}
}

static __always_inline void fn_in_exit(unsigned int verdict)
{
	struct fn_state *st = fn_state();
	const struct sk_buff *skb;
	struct ctbpf_event *e;
	bool full;
	__u32 d;

	if (!st || !st->in_depth)
		return;
	d = --st->in_depth;
	if (d >= FN_FRAMES || (verdict & NF_VERDICT_MASK) != NF_DROP)
		return;
	skb = (const struct sk_buff *)st->in_skb[d];
	/* Dropped without an entry: conntrack could not create one (kernel `drop`). */
	if (BPF_CORE_READ(skb, _nfct) || !fn_watched(st->in_netns[d]))
		return;
	full = st->in_alloc_failed[d];
	count(CTBPF_C_DROP, 1);
	if (full)
		__sync_fetch_and_add(&fn_table_full_drops, 1);
	e = event_reserve(CTBPF_EV_DROP);
	if (e) {
		/* Wake the reader at the start of a table-full storm (at most every 10 ms per
		 * CPU) so it reads the table's fill while it is full. Without the allocator
		 * hook every drop may be one. */
		bool urgent = (full || !fn_alloc_hooked) && e->ts_ns - st->last_drop_wake_ns > 10000000ULL;

		if (urgent)
			st->last_drop_wake_ns = e->ts_ns;
		e->netns = st->in_netns[d];
		event_fill_skb(e, skb);
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
	    (BPF_CORE_READ(ct, status) & (IPS_CONFIRMED | IPS_TEMPLATE)) || !fn_watched(ct_netns(ct)))
		ct = 0;
	d = st->cf_depth++;
	if (d < FN_FRAMES) {
		st->cf_ct[d] = (__u64)(unsigned long)ct;
		st->cf_skb[d] = (__u64)(unsigned long)skb;
	}
}

static __always_inline void fn_confirm_exit(int verdict)
{
	struct fn_state *st = fn_state();
	const struct nf_conn *ct;
	const struct sk_buff *skb;
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
	if ((verdict & NF_VERDICT_MASK) == NF_DROP)
		fn_insert_failed(ct, CTBPF_R_CLASH_DROP);
	else if (skb_ct(skb) != ct)
		fn_insert_failed(ct, CTBPF_R_CLASH_RESOLVED);
	else if (BPF_CORE_READ(ct, status) & IPS_CONFIRMED)
		fn_insert(ct);
}

/* nf_conntrack_hash_check_insert(ct) returned 0: inserted through ctnetlink. */
static __always_inline void fn_netlink_inserted(const struct nf_conn *ct, int ret)
{
	if (ret == 0 && ct && fn_watched(ct_netns(ct)))
		fn_insert(ct);
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

/* An entry is freed (nf_conntrack_free, nf_ct_destroy): early drop or destroy. */
static __always_inline void fn_freed(const struct nf_conn *ct)
{
	struct fn_state *st = fn_state();
	unsigned long status;
	__u32 netns;
	bool evicted;

	if (!st || !ct)
		return;
	status = BPF_CORE_READ(ct, status);
	if (!(status & IPS_CONFIRMED)) /* never inserted: confirm already accounted for it */
		return;
	netns = ct_netns(ct);
	if (!fn_watched(netns))
		return;
	if (ct_expired(ct)) {
		count(CTBPF_C_DESTROY, 1);
		fn_emit_ct(CTBPF_EV_DESTROY, ct, CTBPF_R_TIMEOUT);
		return;
	}
	evicted = fn_evict_hooked ? st->evict_depth > 0 : !(status & IPS_ASSURED) && fn_in_ct(st, netns);
	if (evicted) {
		count(CTBPF_C_EARLY_DROP, 1);
		fn_emit_ct(CTBPF_EV_EARLY_DROP, ct, CTBPF_R_NONE);
	} else {
		count(CTBPF_C_DESTROY, 1);
		fn_emit_ct(CTBPF_EV_DESTROY, ct, CTBPF_R_DELETED);
	}
}

#endif /* CTBPF_FUNCS_BPF_H */
