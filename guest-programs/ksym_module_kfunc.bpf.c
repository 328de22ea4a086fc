// SPDX-License-Identifier: GPL-2.0
/*
 * A kfunc of a module: bpf_testmod_test_mod_kfunc is in bpf_testmod's BTF, not vmlinux's, so
 * the call's imm is its id there and its off the index of bpf_testmod's BTF fd in the load's
 * fd_array (libbpf's way). bpf_testmod registers it for other program types (SCHED_CLS; from
 * 6.12 also TRACING, SYSCALL, STRUCT_OPS), not raw tracepoints: the verifier finds it through
 * fd_array and refuses the call from a raw_tp.w program.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

extern void bpf_testmod_test_mod_kfunc(int i) __ksym;

SEC("raw_tp.w/bpf_test_finish")
int ksym_module_kfunc(__u64 *ctx)
{
	int *err = (void *)ctx[0];

	bpf_testmod_test_mod_kfunc(42);
	*err = 42;
	return 0;
}

char _license[] SEC("license") = "GPL";
