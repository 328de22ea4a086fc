// SPDX-License-Identifier: GPL-2.0
/* ctx[0] read as 4 bytes: the buffer pointer must be read whole, as 8 bytes. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

__u32 sink = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int reject_ctx0_narrow(__u64 *ctx)
{
	sink = *(__u32 *)ctx;
	return 0;
}

char _license[] SEC("license") = "GPL";
