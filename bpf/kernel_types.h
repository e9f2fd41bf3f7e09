/* SPDX-License-Identifier: GPL-2.0-only */
/* The few kernel types ctbpf's BPF programs touch, declared by hand instead of a full
 * generated vmlinux.h (see docs/ARCHITECTURE.md, "Kernel types").
 *
 * Every struct is marked preserve_access_index, so each field access becomes a CO-RE
 * relocation that libbpf resolves against the running kernel's BTF at load time: only
 * the field *names* and rough types here must match the kernel, not offsets or sizes.
 * Fields a kernel nests in anonymous structs/unions (sk_buff's headers group) can be
 * declared flat: libbpf looks through anonymous members when it matches names. */
#ifndef CTBPF_KERNEL_TYPES_H
#define CTBPF_KERNEL_TYPES_H

/* Stands in for a generated vmlinux.h: bpf_tracing.h then names x86 registers as the
 * kernel's struct pt_regs does (di, si, ax), which the kprobe programs read. */
#define __VMLINUX_H__

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };

/* The BPF UAPI bits the programs need (libbpf's headers expect these names). */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};
enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
	BPF_RB_AVAIL_DATA = 0,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

/* The local process behind a packet (event_fill_process in common.bpf.h). */
struct kernfs_node {
	__u64 id; /* the cgroup id (bpf_get_current_cgroup_id); a u64 since 5.5 */
};

struct cgroup {
	struct kernfs_node *kn;
};

struct css_set {
	struct cgroup *dfl_cgrp;
};

struct nsproxy {
	struct net *net_ns;
};

struct task_struct {
	int tgid;
	char comm[16];
	struct nsproxy *nsproxy;
	struct css_set *cgroups;
};

/* 5.15+ (commit 8520e224f547): a plain cgroup pointer; before, a union with bit fields. */
struct sock_cgroup_data {
	struct cgroup *cgroup;
};

struct sock_common {
	unsigned char skc_state;
};

struct sock {
	struct sock_common __sk_common;
	struct sock_cgroup_data sk_cgrp_data;
};

struct sk_buff {
	struct sock *sk;
	int skb_iif;
	unsigned char *head;
	__u16 network_header;
	__u16 transport_header;
	unsigned long _nfct;
};

struct nf_hook_state {
	__u8 hook;
	__u8 pf;
	struct net *net;
};

/* Context of SEC("netfilter") programs (kernel 6.4+). */
struct bpf_nf_ctx {
	const struct nf_hook_state *state;
	struct sk_buff *skb;
};

union nf_inet_addr {
	__u32 all[4];
	__be32 ip;
	__be32 ip6[4];
};

union nf_conntrack_man_proto {
	__be16 all;
};

struct nf_conntrack_man {
	union nf_inet_addr u3;
	union nf_conntrack_man_proto u;
	__u16 l3num;
};

struct nf_conntrack_tuple {
	struct nf_conntrack_man src;
	struct {
		union nf_inet_addr u3;
		union {
			__be16 all;
		} u;
		__u8 protonum;
		__u8 dir;
	} dst;
};

struct nf_conntrack_tuple_hash {
	struct nf_conntrack_tuple tuple;
};

struct nf_conntrack_zone {
	__u16 id;
};

/* ct->proto.tcp (struct ip_ct_tcp): only the state, a u8 since 2.6 (enum tcp_conntrack). */
struct ip_ct_tcp {
	__u8 state;
};

/* The per-protocol union of nf_conn; the other members (dccp, sctp, gre...) depend on the
 * kernel's configuration and are not read. */
union nf_conntrack_proto {
	struct ip_ct_tcp tcp;
};

struct nf_conn {
	__u32 timeout;          /* jiffies (u32) at which the entry expires, once confirmed */
	struct nf_conntrack_zone zone;
	struct nf_conntrack_tuple_hash tuplehash[2];
	unsigned long status;
	possible_net_t ct_net;
	union nf_conntrack_proto proto;
};

/* Context of kprobe programs; only the registers PT_REGS_PARMn/PT_REGS_RC read (x86-64). */
struct pt_regs {
	unsigned long di, si, dx, cx, r8, r9, ax, sp, ip;
};

struct kmem_cache {
	unsigned int object_size;
	const char *name;
};

#pragma clang attribute pop

/* Only the one value we use; bpf_core_enum_value() relocates it to the running kernel's
 * number (the enum has grown and been reordered across versions). */
enum skb_drop_reason {
	SKB_DROP_REASON_NETFILTER_DROP = 0,
};

#endif /* CTBPF_KERNEL_TYPES_H */
