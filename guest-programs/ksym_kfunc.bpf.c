// SPDX-License-Identifier: GPL-2.0
/*
 * kfunc __ksym externs: bpf_rcu_read_lock/unlock (vmlinux, 6.2+), which the kernels that have
 * them let raw_tp.w programs call. Each call becomes BPF_PSEUDO_KFUNC_CALL with the FUNC's id
 * in vmlinux BTF, and the existence checks ld_imm64s with BPF_PSEUDO_BTF_ID. The externs are
 * __weak: where vmlinux lacks them they read as 0, and the program answers 7 instead of 42.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

extern void bpf_rcu_read_lock(void) __ksym __weak;
extern void bpf_rcu_read_unlock(void) __ksym __weak;

SEC("raw_tp.w/bpf_test_finish")
int ksym_kfunc(__u64 *ctx)
{
	int *err = (void *)ctx[0];

	if (!bpf_rcu_read_lock || !bpf_rcu_read_unlock) {
		*err = 7;
		return 0;
	}
	bpf_rcu_read_lock();
	bpf_rcu_read_unlock();
	*err = 42;
	return 0;
}

char _license[] SEC("license") = "GPL";
