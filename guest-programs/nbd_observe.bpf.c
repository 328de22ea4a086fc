// SPDX-License-Identifier: GPL-2.0
/* Copies every field of each NBD request into globals (in host byte order). */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "nbd_request.h"

__u32 seen_magic = 0;
__u32 seen_type = 0;
__u64 seen_from = 0;
__u32 seen_len = 0;
__u32 seen_count = 0;

SEC("raw_tp.w/nbd_send_request")
int nbd_observe(__u64 *ctx)
{
	struct nbd_request_wire *request = (void *)ctx[0];

	seen_magic = bpf_ntohl(request->magic);
	seen_type = bpf_ntohl(request->type);
	seen_from = bpf_be64_to_cpu(request->from);
	seen_len = bpf_ntohl(request->len);
	seen_count++;
	return 0;
}

char _license[] SEC("license") = "GPL";
