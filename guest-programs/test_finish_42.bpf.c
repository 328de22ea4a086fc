// SPDX-License-Identifier: GPL-2.0
/* Upstream raw_tp_writable_test_run: bpf_test_finish's buffer is BPF_PROG_TEST_RUN's error
 * code, so storing 42 there makes the syscall return 42. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tp.w/bpf_test_finish")
int test_finish_42(__u64 *ctx)
{
	int *err = (void *)ctx[0];

	*err = 42;
	return 0;
}

char _license[] SEC("license") = "GPL";
