// SPDX-License-Identifier: GPL-2.0
/* The fentry/fexit backend (BPF trampolines, 5.5+): conntrack's own functions, with typed
 * arguments and return values. Sections name no function: user space points each program
 * at the function this kernel has (bpf_program__set_attach_target) and loads only the
 * ones it uses. What each hook means: funcs.bpf.h. */
#include "funcs.bpf.h"

/* Typed arguments are BTF pointers: the verifier lets us read through them but not mix
 * them into arithmetic (ct_id hides the address with an XOR). Hand on a plain number. */
static __always_inline const struct nf_conn *plain_ct(const void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return (const struct nf_conn *)v;
}

SEC("fentry")
int BPF_PROG(fe_in_enter, struct sk_buff *skb, const struct nf_hook_state *state)
{
	fn_in_enter(skb, state);
	return 0;
}

SEC("fexit")
int BPF_PROG(fe_in_exit, struct sk_buff *skb, const struct nf_hook_state *state, unsigned int ret)
{
	fn_in_exit(ret);
	return 0;
}

SEC("fentry")
int BPF_PROG(fe_confirm_enter, struct sk_buff *skb)
{
	fn_confirm_enter(skb);
	return 0;
}

SEC("fexit")
int BPF_PROG(fe_confirm_exit, struct sk_buff *skb, int ret)
{
	fn_confirm_exit(ret);
	return 0;
}

/* __nf_conntrack_alloc(net, zone, orig, repl, gfp, hash) */
SEC("fexit")
int BPF_PROG(fe_alloc_exit, void *net, void *zone, void *orig, void *repl, unsigned int gfp,
	     unsigned int hash, struct nf_conn *ret)
{
	fn_alloc_exit((unsigned long)ret);
	return 0;
}

SEC("fentry")
int BPF_PROG(fe_evict_enter)
{
	fn_evict_enter();
	return 0;
}

SEC("fexit")
int BPF_PROG(fe_evict_exit)
{
	fn_evict_exit();
	return 0;
}

/* nf_conntrack_free(ct) or nf_ct_destroy(&ct->ct_general): the same address. */
SEC("fentry")
int BPF_PROG(fe_free, void *ct)
{
	fn_freed(plain_ct(ct));
	return 0;
}

SEC("fexit")
int BPF_PROG(fe_netlink_insert_exit, struct nf_conn *ct, int ret)
{
	fn_netlink_inserted(plain_ct(ct), ret);
	return 0;
}
