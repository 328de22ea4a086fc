// SPDX-License-Identifier: GPL-2.0
/*
 * Past the attach-time check, on bpf_testmod's 8-byte buffer (early_ret at 0, val at 4), as
 * first measured by hand: a callee reads 4 bytes at offset 12. Refused when attached alone
 * (bpf_probe_register: max_tp_access 16 > writable size 8); run through a prog array by a
 * caller that touches nothing and attaches. The callee sets early_ret=1 and val=4242, so the
 * 64-byte read of /sys/kernel/bpf_testmod returns "4242\n" only if the read past the end ran.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "testmod_ctx.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} jump SEC(".maps");

/* What the callee read past the buffer: kernel stack, never snapshotted. */
__u32 leaked = 0;
/* What callee_write read back after storing its marker past the buffer. */
__u32 read_back = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int caller(__u64 *ctx)
{
	bpf_tail_call(ctx, &jump, 0);
	return 0;
}

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int callee_read(__u64 *ctx)
{
	struct bpf_testmod_test_writable_ctx *writable = (void *)ctx[0];

	leaked = *(volatile __u32 *)((char *)writable + 12);
	writable->early_ret = 1;
	writable->val = 4242;
	return 0;
}

/* Stores a marker at offset 12, reads it back, restores the old bytes; val=4444. */
SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int callee_write(__u64 *ctx)
{
	struct bpf_testmod_test_writable_ctx *writable = (void *)ctx[0];
	volatile __u32 *past = (void *)((char *)writable + 12);
	__u32 saved = *past;

	*past = 0x5a5a5a5a;
	read_back = *past;
	*past = saved;
	writable->early_ret = 1;
	writable->val = 4444;
	return 0;
}

char _license[] SEC("license") = "GPL";
