// SPDX-License-Identifier: GPL-2.0
/*
 * The upstream module_attach check on bpf_testmod_test_writable_bare, with every input and
 * output a global so cases can drive it from userspace:
 *   in_val    <- the kernel's ctx->val (1024 when the tracepoint fires from a 64-byte read)
 *   early_ret -> ctx->early_ret (1: the read returns "%d\n" of val; 0: the read fails with EIO)
 *   out_val   -> ctx->val
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "testmod_ctx.h"

__u32 in_val = 0;
__u32 early_ret = 0;
__u32 out_val = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int writable_bare(__u64 *ctx)
{
	struct bpf_testmod_test_writable_ctx *writable = (void *)ctx[0];

	in_val = writable->val;
	writable->early_ret = early_ret;
	writable->val = out_val;
	return 0;
}

char _license[] SEC("license") = "GPL";
