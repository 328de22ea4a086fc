// SPDX-License-Identifier: GPL-2.0
/*
 * Past the attach-time check, on bpf_test_finish (every kernel here has it writable; its
 * buffer is BPF_PROG_TEST_RUN's 4-byte `int err`, whatever is stored there is what the syscall
 * returns). The kernel bounds a writable program's buffer and ctx accesses only when that
 * program is attached (bpf_probe_register compares max_tp_access with the writable size and
 * max_ctx_offset with the arguments). `caller` touches nothing and attaches; the callees each
 * break one rule and are refused when attached on their own, but a prog array takes them
 * (__bpf_prog_map_compatible compares type, JIT, sleepable and attach type only), and
 * bpf_tail_call runs them on the caller's ctx.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} jump SEC(".maps");

/* What a callee read beyond what it may touch: kernel stack, never snapshotted. */
__u64 leaked = 0;
/* What callee_write read back after storing its marker past the buffer. */
__u32 read_back = 0;

SEC("raw_tp.w/bpf_test_finish")
int caller(__u64 *ctx)
{
	bpf_tail_call(ctx, &jump, 0);
	return 0;
}

/* Reads 4 bytes at offset 4 of the 4-byte buffer, then stores 4242 as err. */
SEC("raw_tp.w/bpf_test_finish")
int callee_read(__u64 *ctx)
{
	char *buf = (void *)ctx[0];

	leaked = *(volatile __u32 *)(buf + 4);
	*(int *)buf = 4242;
	return 0;
}

/* Reads ctx[1]: bpf_test_finish has one argument, so this is past the args array. */
SEC("raw_tp.w/bpf_test_finish")
int callee_ctx(__u64 *ctx)
{
	int *err = (void *)ctx[0];

	leaked = ((volatile __u64 *)ctx)[1];
	*err = 4343;
	return 0;
}

/*
 * Stores a marker at offset 4 (past the buffer), reads it back, and puts the old bytes back
 * before returning, so the caller's stack is as it was; then stores 4444 as err.
 */
SEC("raw_tp.w/bpf_test_finish")
int callee_write(__u64 *ctx)
{
	char *buf = (void *)ctx[0];
	volatile __u32 *past = (void *)(buf + 4);
	__u32 saved = *past;

	*past = 0x5a5a5a5a;
	read_back = *past;
	*past = saved;
	*(int *)buf = 4444;
	return 0;
}

char _license[] SEC("license") = "GPL";
