// SPDX-License-Identifier: GPL-2.0
/*
 * The program-type reference page's example, in spirit: ctx is the tracepoint's u64 argument
 * array, read with libbpf's BPF_PROG macro; the writable buffer is the first argument.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "testmod_ctx.h"

__u32 raw_tp_writable_bare_in_val = 0;
__u32 raw_tp_writable_bare_early_ret = 0;
__u32 raw_tp_writable_bare_out_val = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int BPF_PROG(handle_raw_tp_writable_bare, struct bpf_testmod_test_writable_ctx *writable)
{
	raw_tp_writable_bare_in_val = writable->val;
	writable->early_ret = raw_tp_writable_bare_early_ret;
	writable->val = raw_tp_writable_bare_out_val;
	return 0;
}

char _license[] SEC("license") = "GPL";
