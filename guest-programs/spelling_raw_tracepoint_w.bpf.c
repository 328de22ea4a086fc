// SPDX-License-Identifier: GPL-2.0
/* libbpf's long spelling `raw_tracepoint.w/<tracepoint>`: stores 4848 as bpf_test_finish's err. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tracepoint.w/bpf_test_finish")
int spelling_raw_tracepoint_w(__u64 *ctx)
{
	*(int *)ctx[0] = 4848;
	return 0;
}

char _license[] SEC("license") = "GPL";
