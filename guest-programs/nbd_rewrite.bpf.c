// SPDX-License-Identifier: GPL-2.0
/* Sends every READ of offset 0 to offset `rewrite_to` instead: the server sees another block. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "nbd_request.h"

__u64 rewrite_to = 0;
__u32 rewritten = 0;

SEC("raw_tp.w/nbd_send_request")
int nbd_rewrite(__u64 *ctx)
{
	struct nbd_request_wire *request = (void *)ctx[0];

	if ((bpf_ntohl(request->type) & 0xffff) != NBD_CMD_READ || request->from != 0)
		return 0;
	request->from = bpf_cpu_to_be64(rewrite_to);
	rewritten++;
	return 0;
}

char _license[] SEC("license") = "GPL";
