// SPDX-License-Identifier: GPL-2.0
/*
 * A statically initialised prog array: the object itself puts `callee` into slot 0 of `jump`
 * (the `.rel.maps` relocation libbpf reads in init_prog_array_slots), so no step fills it.
 * The loader must load callee too and set the slot; the caller's tail call then stores 4747
 * as bpf_test_finish's err.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tp.w/bpf_test_finish")
int callee(__u64 *ctx)
{
	int *err = (void *)ctx[0];

	*err = 4747;
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, int(void *));
} jump SEC(".maps") = {
	.values = { [0] = (void *)&callee },
};

SEC("raw_tp.w/bpf_test_finish")
int caller(__u64 *ctx)
{
	bpf_tail_call(ctx, &jump, 0);
	return 0;
}

char _license[] SEC("license") = "GPL";
