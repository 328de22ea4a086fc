// SPDX-License-Identifier: GPL-2.0
/*
 * A module's kfunc a raw_tp.w program may call: bpf_kfunc_common_test, which bpf_testmod
 * registers for every program type (6.7+). The call's imm is its id in bpf_testmod's BTF and
 * its off the index of bpf_testmod's BTF fd in the load's fd_array (libbpf's way); the
 * existence check is an ld_imm64 with BPF_PSEUDO_BTF_ID and that fd. The extern is __weak:
 * where bpf_testmod lacks it, it reads as 0 and the program answers 7 instead of 42.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

extern void bpf_kfunc_common_test(void) __ksym __weak;

SEC("raw_tp.w/bpf_test_finish")
int ksym_module_kfunc_common(__u64 *ctx)
{
	int *err = (void *)ctx[0];

	if (!bpf_kfunc_common_test) {
		*err = 7;
		return 0;
	}
	bpf_kfunc_common_test();
	*err = 42;
	return 0;
}

char _license[] SEC("license") = "GPL";
