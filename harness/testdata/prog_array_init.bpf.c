// SPDX-License-Identifier: GPL-2.0
/* A prog array with a static initialiser, the way libbpf users fill tail-call slots:
 * libbpf loads `callee` with the object and puts it into slot 0 itself. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int callee(__u64 *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} jump SEC(".maps") = {
	.values = { [0] = (void *)&callee },
};

SEC("raw_tp.w/bpf_test_finish")
int callee(__u64 *ctx)
{
	*(int *)ctx[0] = 4242;
	return 0;
}

SEC("raw_tp.w/bpf_test_finish")
int caller(__u64 *ctx)
{
	bpf_tail_call(ctx, &jump, 0);
	return 0;
}

SEC("raw_tp.w/bpf_test_finish")
int unrelated(__u64 *ctx)
{
	return 0;
}

char _license[] SEC("license") = "GPL";
