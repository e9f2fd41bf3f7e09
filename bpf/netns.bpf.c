// SPDX-License-Identifier: GPL-2.0
/* --all-netns, every backend: a network namespace may have been made. Both programs fire
 * rarely (a fork that asks for a new namespace; any unshare) and only bump a counter that
 * user space reads through the mmapped .bss each tick; it looks for new namespaces (a
 * scan of /proc, /run/netns and nsfs mounts) only when the counter moved. Attached only
 * with --all-netns; where syscall tracepoints are missing user space scans on a timer. */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define CLONE_NEWNET 0x40000000

SEC("tp_btf/task_newtask")
int BPF_PROG(tp_task_newtask, struct task_struct *task, __u64 clone_flags)
{
	if (clone_flags & CLONE_NEWNET)
		__sync_fetch_and_add(&netns_created, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_unshare")
int tp_unshare_exit(void *ctx)
{
	__sync_fetch_and_add(&netns_created, 1);
	return 0;
}
