// SPDX-License-Identifier: GPL-2.0
/*
 * CO-RE against the module's own types: this program's idea of struct wtp_own_buf has
 * another field order and no `magic`. The loader (libbpf, and the harness's own) finds the
 * struct in the module's BTF (/sys/kernel/btf/wtp_own_tp) and relocates every offset.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct wtp_own_buf {
	char tag[8];
	__s32 value;
} __attribute__((preserve_access_index));

SEC("raw_tp.w/wtp_own_rewrite")
int core_rewrite(__u64 *ctx)
{
	struct wtp_own_buf *buf = (void *)ctx[0];

	buf->value = buf->value + 1000;
	buf->tag[0] = 'c';
	buf->tag[1] = 'o';
	buf->tag[2] = 'r';
	buf->tag[3] = 'e';
	buf->tag[4] = '\0';
	return 0;
}

char _license[] SEC("license") = "GPL";
