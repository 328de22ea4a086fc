// SPDX-License-Identifier: GPL-2.0
/*
 * A statically initialised map of maps: the object itself puts `inner_map` into slot 0 of
 * `outer` (the `.rel.maps` relocation libbpf reads in init_map_in_map_slots), so no step fills
 * it. The loader must create `outer` with the inner definition as its template and set the
 * slot before loading. The program finds the inner map through `outer`, counts in its value,
 * and stores 4800 + the value read through `inner_map` itself as bpf_test_finish's err: 4801,
 * then 4802, only if the slot holds `inner_map`.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner inner_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [0] = &inner_map },
};

SEC("raw_tp.w/bpf_test_finish")
int read_through_outer(__u64 *ctx)
{
	int *err = (void *)ctx[0];
	__u32 key = 0;
	__u32 *through_outer, *direct;
	void *map;

	map = bpf_map_lookup_elem(&outer, &key);
	if (!map) {
		*err = 1;
		return 0;
	}
	through_outer = bpf_map_lookup_elem(map, &key);
	direct = bpf_map_lookup_elem(&inner_map, &key);
	if (!through_outer || !direct) {
		*err = 2;
		return 0;
	}
	__sync_fetch_and_add(through_outer, 1);
	*err = 4800 + *direct;
	return 0;
}

char _license[] SEC("license") = "GPL";
