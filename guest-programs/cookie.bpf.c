// SPDX-License-Identifier: GPL-2.0
/* Reads the link's cookie (raw_tracepoint.cookie, 6.10+) and hands it back through the
 * writable buffer: early_ret makes the 64-byte read return "%d\n" of val. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "testmod_ctx.h"

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int cookie(__u64 *ctx)
{
	struct bpf_testmod_test_writable_ctx *writable = (void *)ctx[0];

	writable->early_ret = 1;
	writable->val = (int)bpf_get_attach_cookie(ctx);
	return 0;
}

char _license[] SEC("license") = "GPL";
