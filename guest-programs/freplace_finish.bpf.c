// SPDX-License-Identifier: GPL-2.0
/*
 * Past the attach-time check through freplace: `target` (raw_tp.w on bpf_test_finish) calls
 * the global function `replaceable` and touches nothing itself, so bpf_probe_register lets it
 * attach. `ext_read` (BPF_PROG_TYPE_EXT) replaces `replaceable`; the verifier checks it as a
 * program of its target's type (resolve_prog_type), so ctx->args[0] is the tracepoint buffer
 * and its max_tp_access is recorded, but attaching an extension (bpf_tracing_prog_attach)
 * never compares that with the tracepoint's writable size.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* What ext_read read past the buffer: kernel stack, never snapshotted. */
__u64 leaked = 0;

__attribute__((noinline)) int replaceable(struct bpf_raw_tracepoint_args *ctx)
{
	return ctx != 0;
}

SEC("raw_tp.w/bpf_test_finish")
int target(struct bpf_raw_tracepoint_args *ctx)
{
	return replaceable(ctx) - 1;
}

/* Reads 4 bytes at offset 4 of the 4-byte buffer, then stores 4646 as err. */
SEC("freplace/replaceable")
int ext_read(struct bpf_raw_tracepoint_args *ctx)
{
	char *buf = (void *)ctx->args[0];

	leaked = *(volatile __u32 *)(buf + 4);
	*(int *)buf = 4646;
	return 0;
}

char _license[] SEC("license") = "GPL";
