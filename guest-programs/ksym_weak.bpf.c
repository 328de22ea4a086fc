// SPDX-License-Identifier: GPL-2.0
/*
 * __weak __ksym externs no kernel has: a typeless one, a typed variable and a kfunc. libbpf
 * resolves each to 0 (the kfunc's call, in a branch the verifier sees is dead, becomes an
 * invalid helper call it never reaches). The program answers 42 through bpf_test_finish when
 * all three read as 0, plus 1, 2, 4 for each that did not.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

extern const void wtp_no_such_symbol __ksym __weak;
extern const int wtp_no_such_var __ksym __weak;
extern void wtp_no_such_kfunc(void) __ksym __weak;

SEC("raw_tp.w/bpf_test_finish")
int ksym_weak(__u64 *ctx)
{
	int *err = (void *)ctx[0];
	int found = 0;

	if (&wtp_no_such_symbol)
		found |= 1;
	if (&wtp_no_such_var)
		found |= 2;
	if (wtp_no_such_kfunc) {
		wtp_no_such_kfunc();
		found |= 4;
	}
	*err = 42 + found;
	return 0;
}

char _license[] SEC("license") = "GPL";
