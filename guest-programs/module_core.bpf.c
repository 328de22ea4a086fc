// SPDX-License-Identifier: GPL-2.0
/*
 * CO-RE against a module's BTF: bpf_testmod_test_writable_ctx lives in bpf_testmod's BTF, not
 * in vmlinux. The local declaration has the fields in the *other* order (val at 0, early_ret
 * at 4); only CO-RE field relocations against the module's type put the accesses at the
 * kernel's offsets (early_ret at 0, val at 4). Without them the program would write early_ret
 * into the kernel's val and the read would fail with EIO.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct bpf_testmod_test_writable_ctx {
	int val;
	_Bool early_ret;
} __attribute__((preserve_access_index));

__u32 in_val = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int module_core(__u64 *ctx)
{
	struct bpf_testmod_test_writable_ctx *writable = (void *)ctx[0];

	in_val = writable->val;
	writable->early_ret = 1;
	writable->val = 0xf1f2f3f4;
	return 0;
}

char _license[] SEC("license") = "GPL";
