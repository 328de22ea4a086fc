// SPDX-License-Identifier: GPL-2.0
/* ctx[12], at byte 96: beyond the 12 arguments any raw tracepoint ctx can have. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

__u64 sink = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int reject_ctx_past_96(__u64 *ctx)
{
	sink = ctx[12];
	return 0;
}

char _license[] SEC("license") = "GPL";
