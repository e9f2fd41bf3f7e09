/* SPDX-License-Identifier: MIT OR GPL-2.0-only */
/* The one event layout shared by the BPF programs (bpf/) and the C++ side (userspace/).
 * Plain C with fixed-width types so that both compilers lay it out identically; the
 * static asserts below pin the size and the offsets that the decoder relies on.
 * Changing anything here changes the wire format of the ring buffer and of recordings:
 * bump CTBPF_EVENT_VERSION. */
#ifndef CTBPF_EVENT_H
#define CTBPF_EVENT_H

#ifdef __bpf__
/* BPF side: the basic __u8.. types come from the checked-in kernel types header. */
#else
#include <linux/types.h>
#endif

/* 1: the first 64 bytes alone (recordings made before the state fields; still read).
 * 2: + ct_status, tcp_state, state_valid (72 bytes).
 * 3: + pid (in 2's reserved word), cgroup, comm (96 bytes). */
#define CTBPF_EVENT_VERSION 3

/* What happened. Values are stable (they are written to files). */
enum ctbpf_event_kind {
	CTBPF_EV_INSERT = 1,        /* an entry is confirmed into the table */
	CTBPF_EV_DROP = 2,          /* conntrack dropped a packet: no entry could be created */
	CTBPF_EV_EARLY_DROP = 3,    /* an unassured entry was evicted to make room */
	CTBPF_EV_INSERT_FAILED = 4, /* confirm failed (clash) after the insert was announced */
	CTBPF_EV_DESTROY = 5,       /* an inserted entry was freed, for any reason */
};

/* Kind-specific detail in ctbpf_event.reason. */
enum ctbpf_reason {
	CTBPF_R_NONE = 0,
	/* destroy */
	CTBPF_R_TIMEOUT = 1,        /* the entry had expired (gc or lookup reaped it) */
	CTBPF_R_DELETED = 2,        /* removed before expiry: flush, conntrack -D, netns exit, protocol kill */
	/* insert_failed */
	CTBPF_R_CLASH_DROP = 3,     /* clash with an existing entry, packet dropped (kernel: insert_failed) */
	CTBPF_R_CLASH_RESOLVED = 4, /* clash resolved by reusing the existing entry (kernel: clashres) */
	/* drop. Set in the kernel where it knows: the fentry and kprobe backends with the
	 * allocator (__nf_conntrack_alloc) hooked give TABLE_FULL when the allocation failed
	 * during that packet's nf_conntrack_in, else NO_ENTRY. Elsewhere (the tracepoint
	 * backend; a function backend without the allocator hook) the kernel leaves
	 * CTBPF_R_NONE, "not known in the kernel", and user space decides from the table's fill
	 * (see docs/ARCHITECTURE.md). A reason set by the kernel is final. */
	CTBPF_R_TABLE_FULL = 5,     /* no entry could be allocated: table full (or out of memory) */
	CTBPF_R_NO_ENTRY = 6,       /* dropped for another reason (or: the table was not seen full) */
};

/* Per-CPU counters kept in the kernel: exact totals even when the ring buffer overflows. */
enum ctbpf_counter {
	CTBPF_C_INSERT = 0,
	CTBPF_C_DROP,
	CTBPF_C_EARLY_DROP,
	CTBPF_C_INSERT_FAILED,
	CTBPF_C_CLASH_RESOLVED,
	CTBPF_C_DESTROY,
	CTBPF_C_LOST,               /* events not delivered: ring buffer full */
	CTBPF_C_LOST_DROP,          /* of those, drop events (their table-full reason is unknown) */
	CTBPF_C_OVERFLOW,           /* nested hook calls past the per-CPU slots: not tracked, may be missed */
	CTBPF_C__COUNT,
};

/* 96 bytes, naturally aligned, no implicit padding. Addresses and ports are in network
 * byte order exactly as the kernel holds them; IPv4 uses the first 4 bytes of src/dst.
 * Layout version 1 was the first 64 bytes alone, version 2 the first 72: new fields go at
 * the end. */
struct ctbpf_event {
	__u64 ts_ns;   /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 ct_id;   /* opaque, stable for the entry's lifetime: pairs insert with destroy; 0 for drop */
	__u32 netns;   /* network namespace inode number */
	__u16 zone;
	__u16 cpu;
	__u16 sport;   /* network byte order; ICMP: id */
	__u16 dport;   /* network byte order; ICMP: type << 8 | code */
	__u8 kind;     /* enum ctbpf_event_kind */
	__u8 family;   /* AF_INET (2) or AF_INET6 (10) */
	__u8 proto;    /* IPPROTO_* */
	__u8 reason;   /* enum ctbpf_reason */
	__u8 src[16];
	__u8 dst[16];
	/* The entry's state, read from the kernel's nf_conn by every backend for insert,
	 * insert_failed, early_drop and destroy; all 0 with state_valid 0 for drop (no entry)
	 * and where the kernel's fields could not be read. */
	__u16 ct_status; /* low 16 bits of ct->status, raw kernel bits (enum ip_conntrack_status):
			  * 0 EXPECTED, 1 SEEN_REPLY, 2 ASSURED, 3 CONFIRMED, 4 SRC_NAT, 5 DST_NAT,
			  * 6 SEQ_ADJUST, 7 SRC_NAT_DONE, 8 DST_NAT_DONE, 9 DYING (set by
			  * nf_ct_delete: on early_drop and on most destroys), ... 11 TEMPLATE.
			  * insert: CONFIRMED always set (the tracepoint backend reads the status just
			  * before confirm, the function backends just after) */
	__u8 tcp_state;  /* IPPROTO_TCP only, else 0: ct->proto.tcp.state (enum tcp_conntrack):
			  * 0 NONE, 1 SYN_SENT, 2 SYN_RECV, 3 ESTABLISHED, 4 FIN_WAIT, 5 CLOSE_WAIT,
			  * 6 LAST_ACK, 7 TIME_WAIT, 8 CLOSE, 9 SYN_SENT2 */
	__u8 state_valid; /* 1: ct_status (and tcp_state for TCP) were read; 0: not known */
	/* The local process that sent the packet (insert and drop of a locally originated
	 * packet: it has a socket and no input interface), read where the packet is seen.
	 * pid and comm only when the sending task is the one running (its network namespace
	 * and cgroup are the socket's), else 0 and empty: forwarded, received or NATed
	 * traffic has no local process, and a packet sent from softirq (a retransmission)
	 * has none that can be named. */
	__u32 pid;        /* thread group id (the pid `ps` shows); 0: no local process known */
	__u64 cgroup;     /* cgroup v2 id of the sending socket (the cgroup directory's inode); 0: none */
	char comm[16];    /* the task's name, NUL-padded */
};

#ifdef __cplusplus
#define CTBPF_ASSERT static_assert
#else
#define CTBPF_ASSERT _Static_assert
#endif
CTBPF_ASSERT(sizeof(struct ctbpf_event) == 96, "ctbpf_event is a 96-byte wire format");
CTBPF_ASSERT(__builtin_offsetof(struct ctbpf_event, src) == 32, "ctbpf_event layout changed");
CTBPF_ASSERT(__builtin_offsetof(struct ctbpf_event, ct_status) == 64, "ctbpf_event layout changed");
CTBPF_ASSERT(__builtin_offsetof(struct ctbpf_event, tcp_state) == 66, "ctbpf_event layout changed");
CTBPF_ASSERT(__builtin_offsetof(struct ctbpf_event, state_valid) == 67, "ctbpf_event layout changed");
CTBPF_ASSERT(__builtin_offsetof(struct ctbpf_event, pid) == 68, "ctbpf_event layout changed");
CTBPF_ASSERT(__builtin_offsetof(struct ctbpf_event, cgroup) == 72, "ctbpf_event layout changed");
CTBPF_ASSERT(__builtin_offsetof(struct ctbpf_event, comm) == 80, "ctbpf_event layout changed");
#undef CTBPF_ASSERT

#endif /* CTBPF_EVENT_H */
