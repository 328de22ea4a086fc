// SPDX-License-Identifier: GPL-2.0
/* A writable program that never touches a buffer: it may attach to a tracepoint without one. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

__u32 runs = 0;

SEC("raw_tp.w/bpf_testmod_test_read")
int untouched_buffer(__u64 *ctx)
{
	runs++;
	return 0;
}

char _license[] SEC("license") = "GPL";
