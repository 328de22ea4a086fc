// SPDX-License-Identifier: GPL-2.0
/* A u8 read one byte past bpf_testmod's 8-byte writable buffer. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "testmod_ctx.h"

__u8 sink = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int reject_past_end(__u64 *ctx)
{
	__u8 *buffer = (void *)ctx[0];

	sink = buffer[TESTMOD_WRITABLE_SIZE];
	return 0;
}

char _license[] SEC("license") = "GPL";
