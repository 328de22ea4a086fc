// SPDX-License-Identifier: GPL-2.0
/* A store at a variable (bounded) offset into the buffer: the verifier wants constant offsets. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

volatile __u32 slot = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int reject_var_offset_store(__u64 *ctx)
{
	__u8 *buffer = (void *)ctx[0];

	buffer[slot & 7] = 1;
	return 0;
}

char _license[] SEC("license") = "GPL";
