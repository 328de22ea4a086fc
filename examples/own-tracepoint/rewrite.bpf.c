// SPDX-License-Identifier: GPL-2.0
/* Rewrites the module's buffer: the reader of /proc/wtp_own_tp sees the new value and tag. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* The module's struct (modules/wtp_own_tp/wtp_own_tp.h), copied: plain offsets, no CO-RE. */
struct wtp_own_buf {
	__u32 magic;
	__s32 value;
	char tag[8];
};

__s32 seen_value = 0;
__u32 saw_reads = 0;
__s32 new_value = 4242;

SEC("raw_tp.w/wtp_own_rewrite")
int rewrite(__u64 *ctx)
{
	struct wtp_own_buf *buf = (void *)ctx[0];

	seen_value = buf->value;
	/* The second argument: how many reads the module has seen (at least this one). */
	saw_reads = ctx[1] > 0;
	buf->value = new_value;
	buf->tag[0] = 'b';
	buf->tag[1] = 'p';
	buf->tag[2] = 'f';
	buf->tag[3] = '\0';
	return 0;
}

char _license[] SEC("license") = "GPL";
