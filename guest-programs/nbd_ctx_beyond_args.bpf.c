// SPDX-License-Identifier: GPL-2.0
/* nbd_send_request has 3 arguments (request, index, rq): reading a 4th ctx slot is within the
 * 96-byte ctx the verifier allows, so it loads, but attach must refuse with EINVAL. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

__u64 sink = 0;

SEC("raw_tp.w/nbd_send_request")
int nbd_ctx_beyond_args(__u64 *ctx)
{
	sink = ctx[3];
	return 0;
}

char _license[] SEC("license") = "GPL";
