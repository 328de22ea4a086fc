// SPDX-License-Identifier: GPL-2.0
/* bpf_testmod_test_writable_bare has one argument; ctx[1] is inside the 96 bytes the verifier
 * allows, so this loads, and attach checks the args the program touched. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

__u64 sink = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int reject_ctx_beyond_args(__u64 *ctx)
{
	sink = ctx[1];
	return 0;
}

char _license[] SEC("license") = "GPL";
