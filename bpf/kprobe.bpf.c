// SPDX-License-Identifier: GPL-2.0
/* The kprobe/kretprobe backend: the same hooks as fentry.bpf.c for kernels with kprobes
 * but without BPF trampolines. A kretprobe sees only the return value, so entry programs
 * keep what the return needs (funcs.bpf.h pairs them per CPU). Sections name no function:
 * user space attaches each program to the function this kernel has. */
#include "funcs.bpf.h"

SEC("kprobe")
int BPF_KPROBE(kp_in_enter, struct sk_buff *skb, const struct nf_hook_state *state)
{
	fn_in_enter(skb, state);
	return 0;
}

SEC("kretprobe")
int BPF_KRETPROBE(kp_in_exit, unsigned int ret)
{
	fn_in_exit(ret);
	return 0;
}

SEC("kprobe")
int BPF_KPROBE(kp_confirm_enter, struct sk_buff *skb)
{
	fn_confirm_enter(skb);
	return 0;
}

SEC("kretprobe")
int BPF_KRETPROBE(kp_confirm_exit, int ret)
{
	fn_confirm_exit(ret);
	return 0;
}

SEC("kretprobe")
int BPF_KRETPROBE(kp_alloc_exit, unsigned long ret)
{
	fn_alloc_exit(ret);
	return 0;
}

SEC("kprobe")
int BPF_KPROBE(kp_evict_enter)
{
	fn_evict_enter();
	return 0;
}

SEC("kretprobe")
int BPF_KRETPROBE(kp_evict_exit)
{
	fn_evict_exit();
	return 0;
}

SEC("kprobe")
int BPF_KPROBE(kp_free, void *ct)
{
	fn_freed(ct);
	return 0;
}

/* Process context (ctnetlink), one call at a time per CPU. */
SEC("kprobe")
int BPF_KPROBE(kp_netlink_insert_enter, struct nf_conn *ct)
{
	struct fn_state *st = fn_state();

	if (st)
		st->nl_ct = (__u64)(unsigned long)ct;
	return 0;
}

SEC("kretprobe")
int BPF_KRETPROBE(kp_netlink_insert_exit, int ret)
{
	struct fn_state *st = fn_state();

	if (st) {
		fn_netlink_inserted((const struct nf_conn *)st->nl_ct, ret);
		st->nl_ct = 0;
	}
	return 0;
}
