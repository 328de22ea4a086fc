// SPDX-License-Identifier: GPL-2.0
/* The positive twin of reject_past_end: reads and writes the buffer's last byte (the top byte
 * of val) and sets early_ret, so the read returns val with that byte changed. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "testmod_ctx.h"

__u8 seen_last = 0xff;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int edge_last_byte(__u64 *ctx)
{
	__u8 *buffer = (void *)ctx[0];

	seen_last = buffer[TESTMOD_WRITABLE_SIZE - 1];
	buffer[TESTMOD_WRITABLE_SIZE - 1] = 1;
	buffer[0] = 1;
	return 0;
}

char _license[] SEC("license") = "GPL";
