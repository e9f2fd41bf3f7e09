// SPDX-License-Identifier: GPL-2.0
/* The tracepoint + netfilter-hook backend: for kernels without kprobes or BPF trampolines
 * (6.4+: BPF netfilter links). How each event is recognised:
 *
 *  insert         netfilter hook just before confirm (LOCAL_IN and POST_ROUTING at
 *                 INT_MAX-1): the packet's entry is new and not yet confirmed.
 *  insert_failed  the packet announced at that hook is then dropped by confirm
 *                 (tp_btf/kfree_skb), or its entry is freed unconfirmed (clash resolved).
 *  drop           hooks around conntrack (priority -201 and -199) bracket conntrack's own
 *                 hook (-200); a NETFILTER_DROP of a bracketed packet that still has no
 *                 entry is conntrack's drop, not a firewall rule's. Its reason stays
 *                 none: whether the table was full is decided in user space.
 *  early_drop     an unassured, unexpired confirmed entry freed while this CPU is inside
 *                 the bracket: only early_drop() frees such entries there.
 *  destroy        raw_tp/kmem_cache_free on the "nf_conntrack" slab cache.
 *
 * Netfilter hooks are per network namespace (the loader attaches them in each watched
 * one); the tracepoints are global and filter on the watched_netns map. The decisions are
 * classify.h's, shared with the fentry and kprobe backends. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define BRACKET_SLOTS 4

/* Per-CPU view of what is in flight. Netfilter hooks for one packet run on one CPU
 * without sleeping; nesting (softirq over process context) is covered by several slots. */
struct cpu_state {
	__u64 in_ct_skb[BRACKET_SLOTS];   /* packets between the -201 and -199 hooks */
	__u32 in_ct_netns[BRACKET_SLOTS];
	__u64 pending_skb;                /* last packet announced as insert, before confirm */
	__u64 pending_ct;                 /* and its entry */
	__u64 last_drop_wake_ns;          /* rate limit for waking the reader on drops */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_state);
} cpu_states SEC(".maps");

/* The conntrack slab cache, found by name on the first free and then compared by address. */
__u64 ct_cache = 0;

static __always_inline struct cpu_state *cpu_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cpu_states, &zero);
}

SEC("netfilter")
int nf_before_ct(struct bpf_nf_ctx *ctx)
{
	struct cpu_state *st = cpu_state();
	__u64 skb = (__u64)(unsigned long)ctx->skb;
	int i, slot = -1;

	if (!st)
		return NF_ACCEPT;
	for (i = 0; i < BRACKET_SLOTS; i++) {
		if (st->in_ct_skb[i] == 0) {
			slot = i;
			break;
		}
	}
	/* More nesting than slots (or slots left by packets that never reached the -199
	 * hook): reuse one, losing that packet's drop, and say so. */
	if (slot < 0) {
		count(CTBPF_C_OVERFLOW, 1);
		slot = 0;
	}
	st->in_ct_skb[slot & (BRACKET_SLOTS - 1)] = skb;
	st->in_ct_netns[slot & (BRACKET_SLOTS - 1)] = ctx->state->net->ns.inum;
	return NF_ACCEPT;
}

SEC("netfilter")
int nf_after_ct(struct bpf_nf_ctx *ctx)
{
	struct cpu_state *st = cpu_state();
	__u64 skb = (__u64)(unsigned long)ctx->skb;
	int i;

	if (!st)
		return NF_ACCEPT;
	for (i = 0; i < BRACKET_SLOTS; i++)
		if (st->in_ct_skb[i] == skb)
			st->in_ct_skb[i] = 0;
	return NF_ACCEPT;
}

SEC("netfilter")
int nf_before_confirm(struct bpf_nf_ctx *ctx)
{
	struct sk_buff *skb = ctx->skb;
	unsigned long nfct = skb->_nfct;
	const struct nf_conn *ct = (const struct nf_conn *)(nfct & ~NFCT_INFOMASK);
	struct cpu_state *st;
	unsigned long status;

	/* Only an original-direction packet of an unconfirmed entry gets confirmed. */
	if (!ct || (nfct & NFCT_INFOMASK) >= IP_CT_IS_REPLY)
		return NF_ACCEPT;
	status = BPF_CORE_READ(ct, status);
	if (status & (CTBPF_IPS_CONFIRMED | CTBPF_IPS_TEMPLATE))
		return NF_ACCEPT;

	st = cpu_state();
	if (st) {
		st->pending_skb = (__u64)(unsigned long)skb;
		st->pending_ct = (__u64)(unsigned long)ct;
	}
	report_ct_skb(CTBPF_EV_INSERT, ct, CTBPF_R_NONE, skb, true);
	return NF_ACCEPT;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tp_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	__u64 addr = (__u64)(unsigned long)skb;
	struct ctbpf_event *e;
	struct cpu_state *st;
	__u32 netns = 0;
	__u8 why;
	int i;

	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP))
		return 0;
	st = cpu_state();
	if (!st)
		return 0;
	if (st->pending_skb == addr) {
		const struct nf_conn *ct = (const struct nf_conn *)(skb->_nfct & ~NFCT_INFOMASK);
		unsigned long status;

		st->pending_skb = 0;
		/* Dropped right after our pre-confirm hook, entry still unconfirmed: confirm
		 * returned NF_DROP. (The slot can be stale: the skb address may be a reused one.) */
		if (ct && (__u64)(unsigned long)ct == st->pending_ct) {
			status = BPF_CORE_READ(ct, status);
			if (!(status & CTBPF_IPS_CONFIRMED)) {
				struct ctbpf_class c = ctbpf_classify_confirm(CTBPF_NF_DROP, false, status);

				st->pending_ct = 0;
				report_insert_failed(ct, c.reason);
				return 0;
			}
		}
	}
	for (i = 0; i < BRACKET_SLOTS; i++) {
		if (st->in_ct_skb[i] == addr) {
			st->in_ct_skb[i] = 0;
			netns = st->in_ct_netns[i];
		}
	}
	/* Dropped inside the bracket without an entry: conntrack could not create one. */
	if (!netns || skb->_nfct)
		return 0;
	count(CTBPF_C_DROP, 1);
	/* Whether the table was full is not known here: user space reads its fill, woken at
	 * the start of a drop storm so that it reads it while the storm is on. */
	why = ctbpf_drop_reason(false, false);
	e = event_reserve(CTBPF_EV_DROP);
	if (e) {
		bool urgent = ctbpf_drop_urgent(why, e->ts_ns, st->last_drop_wake_ns);

		if (urgent)
			st->last_drop_wake_ns = e->ts_ns;
		e->netns = netns;
		e->reason = why;
		event_fill_skb(e, skb);
		event_fill_process(e, sock_facts_btf(skb));
		event_submit_flags(e, urgent);
	}
	return 0;
}

#define CT_CACHE_NAME "nf_conntrack"

static __always_inline bool is_ct_cache(const struct kmem_cache *s)
{
	char name[16];
	unsigned int i;

	if (ct_cache)
		return (__u64)(unsigned long)s == ct_cache;
	/* Cheap size test first: this runs for every slab free in the system. */
	if (BPF_CORE_READ(s, object_size) != bpf_core_type_size(struct nf_conn))
		return false;
	if (bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(s, name)) != sizeof(CT_CACHE_NAME))
		return false;
	for (i = 0; i < sizeof(CT_CACHE_NAME); i++)
		if (name[i] != CT_CACHE_NAME[i])
			return false;
	ct_cache = (__u64)(unsigned long)s;
	return true;
}

/* raw_tp rather than tp_btf: 6.12's verifier refuses tp_btf here for the `const void *`
 * argument; the cache's fields are then read with CO-RE probe reads. */
SEC("raw_tp/kmem_cache_free")
int BPF_PROG(tp_kmem_cache_free, unsigned long call_site, const void *ptr, const struct kmem_cache *s)
{
	const struct nf_conn *ct = ptr;
	struct ctbpf_free_facts facts = {};
	struct ctbpf_class c;
	struct cpu_state *st;
	__u32 netns;
	int i;

	if (!ptr || !is_ct_cache(s))
		return 0;
	netns = ct_netns(ct);
	if (!bpf_map_lookup_elem(&watched_netns, &netns))
		return 0;
	st = cpu_state();
	if (!st)
		return 0;
	facts.status = BPF_CORE_READ(ct, status);
	facts.announced = st->pending_ct == (__u64)(unsigned long)ct;
	if (facts.announced) {
		st->pending_ct = 0;
		if (!(facts.status & CTBPF_IPS_CONFIRMED))
			st->pending_skb = 0;
	}
	if (facts.status & CTBPF_IPS_CONFIRMED) {
		facts.expired = ct_expired(ct);
		for (i = 0; i < BRACKET_SLOTS; i++)
			if (st->in_ct_skb[i] && st->in_ct_netns[i] == netns)
				facts.in_conntrack = true;
	}
	c = ctbpf_classify_free(facts);
	if (c.kind == CTBPF_EV_INSERT_FAILED)
		report_insert_failed(ct, c.reason);
	else if (c.kind)
		report_ct(c.kind, ct, c.reason);
	return 0;
}

