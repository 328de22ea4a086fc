// SPDX-License-Identifier: GPL-2.0
/* A read 8 bytes before the start of the buffer (negative constant offset). */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

__u64 sink = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int reject_negative_offset(__u64 *ctx)
{
	__u8 *buffer = (void *)ctx[0];

	sink = *(__u64 *)(buffer - 8);
	return 0;
}

char _license[] SEC("license") = "GPL";
