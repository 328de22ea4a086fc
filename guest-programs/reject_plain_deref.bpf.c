// SPDX-License-Identifier: GPL-2.0
/* A plain raw_tp (type 17) treating ctx[0] as the buffer: for that type ctx[0] is a scalar. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "testmod_ctx.h"

int sink = 0;

SEC("raw_tp/bpf_testmod_test_writable_bare")
int reject_plain_deref(__u64 *ctx)
{
	struct bpf_testmod_test_writable_ctx *writable = (void *)ctx[0];

	sink = writable->val;
	return 0;
}

char _license[] SEC("license") = "GPL";
