// SPDX-License-Identifier: GPL-2.0
/*
 * A typed __ksym variable: the per-CPU runqueues (struct rq), used with bpf_this_cpu_ptr.
 * Resolved, the ld_imm64 becomes BPF_PSEUDO_BTF_ID with the VAR's id in vmlinux BTF, and the
 * program answers 42. pahole puts only per-CPU variables into vmlinux BTF, and the project's
 * kernels are uniprocessor (no SMP: no per-CPU section), so their BTF has no VAR at all: the
 * __weak extern stays unresolved and reads as 0, as with libbpf, and the program answers 7.
 * The struct's members do not matter: libbpf's check compares kinds (struct with struct).
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct rq {
	int cpu;
};

extern const struct rq runqueues __ksym __weak;

SEC("raw_tp.w/bpf_test_finish")
int ksym_typed(__u64 *ctx)
{
	int *err = (void *)ctx[0];

	if (!&runqueues) {
		*err = 7;
		return 0;
	}
	*err = bpf_this_cpu_ptr(&runqueues) ? 42 : 1;
	return 0;
}

char _license[] SEC("license") = "GPL";
