// SPDX-License-Identifier: GPL-2.0
/*
 * A typeless __ksym extern: the loader writes the symbol's address from /proc/kallsyms into
 * the ld_imm64 (libbpf's way). bpf_prog_test_run_skb is a global function of
 * net/bpf/test_run.c, so a kernel built without KALLSYMS_ALL (data symbols) lists it too.
 * A kernel text address on x86-64 has its upper 32 bits all set: the program answers 42
 * through bpf_test_finish when it got such an address, 1 otherwise.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

extern const void bpf_prog_test_run_skb __ksym;

SEC("raw_tp.w/bpf_test_finish")
int ksym_typeless(__u64 *ctx)
{
	int *err = (void *)ctx[0];
	__u64 address = (__u64)&bpf_prog_test_run_skb;

	*err = address >> 32 == 0xffffffff ? 42 : 1;
	return 0;
}

char _license[] SEC("license") = "GPL";
