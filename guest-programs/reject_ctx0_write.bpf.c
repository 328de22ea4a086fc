// SPDX-License-Identifier: GPL-2.0
/* A writable program overwriting ctx[0], the buffer pointer itself (only the buffer is
 * writable, not the argument array). */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int reject_ctx0_write(__u64 *ctx)
{
	ctx[0] = 0;
	return 0;
}

char _license[] SEC("license") = "GPL";
