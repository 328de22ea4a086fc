// SPDX-License-Identifier: GPL-2.0
/*
 * A program written the way most BPF programs are: against "vmlinux.h", here the header
 * generated from the tested kernel's BTF and bpf_testmod's (xtask/src/kernel/vmlinux_h.rs), with
 * no declaration of its own. struct bpf_testmod_test_writable_ctx is the module's type as its
 * BTF has it; the header marks every struct preserve_access_index, so each field access is a
 * CO-RE relocation the loader resolves against bpf_testmod's split BTF (vmlinux has no such
 * type). The read goes through BPF_CORE_READ (bpf_probe_read_kernel of a relocated offset), the
 * writes are plain stores through the relocated fields.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

__u32 in_val = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int vmlinux_h_core(__u64 *ctx)
{
	struct bpf_testmod_test_writable_ctx *writable = (void *)ctx[0];

	in_val = BPF_CORE_READ(writable, val);
	writable->early_ret = 1;
	writable->val = 0xf1f2f3f4;
	return 0;
}

char _license[] SEC("license") = "GPL";
