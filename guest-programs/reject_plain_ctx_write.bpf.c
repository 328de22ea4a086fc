// SPDX-License-Identifier: GPL-2.0
/* A plain raw_tp writing into its ctx (the argument array is read-only for every type). */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tp/bpf_testmod_test_writable_bare")
int reject_plain_ctx_write(__u64 *ctx)
{
	ctx[0] = 0;
	return 0;
}

char _license[] SEC("license") = "GPL";
