// SPDX-License-Identifier: GPL-2.0
/* Reads the byte just past the 28-byte request: the verifier accepts it (it does not know the
 * tracepoint yet) and records the access size; attach must then refuse with EINVAL. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "nbd_request.h"

__u8 sink = 0;

SEC("raw_tp.w/nbd_send_request")
int nbd_past_end(__u64 *ctx)
{
	__u8 *request = (void *)ctx[0];

	sink = request[NBD_REQUEST_SIZE];
	return 0;
}

char _license[] SEC("license") = "GPL";
