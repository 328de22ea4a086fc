// SPDX-License-Identifier: GPL-2.0
/*
 * `raw_tp.w` without a tracepoint (upstream's verifier_*.c style): the section says only the
 * type; the case's attach step names the tracepoint. Stores 4949 as bpf_test_finish's err.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tp.w")
int spelling_unnamed(__u64 *ctx)
{
	*(int *)ctx[0] = 4949;
	return 0;
}

char _license[] SEC("license") = "GPL";
