// SPDX-License-Identifier: GPL-2.0
/*
 * Static .maps initialisers of both kinds libbpf fills (the loader's unit tests read this
 * object, built with clang 14: `clang -target bpf -O2 -g -c static_slots.bpf.c
 * -I/usr/include/x86_64-linux-gnu`):
 * - a map of maps whose slot 0 holds `inner_map` (libbpf's init_map_in_map_slots; the inner
 *   definition, `struct inner`, is also the template the outer map is created with);
 * - a prog array whose slot 0 holds a `syscall` program (libbpf's init_prog_array_slots
 *   loads it with its own type, BPF_PROG_TYPE_SYSCALL);
 * - a `?syscall` program named nowhere, whose section name LLVM stores with `syscall` as its
 *   tail (the loader renames both for aya-obj and must keep them apart);
 * - a `?tc` program (a kind aya-obj does not parse, so hidden from it) with a CO-RE
 *   relocation, which must not reach aya-obj's CO-RE pass.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner inner_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [1] = &inner_map },
};

SEC("syscall")
int sys_target(void *ctx)
{
	return 0;
}

SEC("?syscall")
int sys_unused(void *ctx)
{
	return 1;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__array(values, int(void *));
} sys_jump SEC(".maps") = {
	.values = { [0] = (void *)&sys_target },
};

SEC("raw_tp.w/bpf_test_finish")
int reader(__u64 *ctx)
{
	__u32 key = 0;
	void *map = bpf_map_lookup_elem(&outer, &(__u32){ 1 });
	__u32 *value;

	if (!map)
		return 0;
	value = bpf_map_lookup_elem(map, &key);
	if (value)
		*(int *)ctx[0] = *value;
	return 0;
}

struct counted {
	int n;
};

SEC("?tc")
int tc_core(void *ctx)
{
	return bpf_core_type_id_local(struct counted);
}

char _license[] SEC("license") = "GPL";
