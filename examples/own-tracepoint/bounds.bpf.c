// SPDX-License-Identifier: GPL-2.0
/*
 * The attach-time check on the module's tracepoint: its buffer is 16 bytes and it has two
 * arguments. Every program here loads (the verifier does not know the tracepoint yet);
 * BPF_RAW_TRACEPOINT_OPEN compares what each one touches with the tracepoint.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

__u32 out = 0;

/* Bytes 12..15: the buffer's last word. */
SEC("raw_tp.w/wtp_own_rewrite")
int read_last_word(__u64 *ctx)
{
	char *buf = (void *)ctx[0];

	out = *(volatile __u32 *)(buf + 12);
	return 0;
}

/* Bytes 16..19: one word past the end. */
SEC("raw_tp.w/wtp_own_rewrite")
int read_past_end(__u64 *ctx)
{
	char *buf = (void *)ctx[0];

	out = *(volatile __u32 *)(buf + 16);
	return 0;
}

/* ctx[2]: a third argument the tracepoint does not have. */
SEC("raw_tp.w/wtp_own_rewrite")
int read_third_arg(__u64 *ctx)
{
	out = ctx[2];
	return 0;
}

char _license[] SEC("license") = "GPL";
