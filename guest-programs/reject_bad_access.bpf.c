// SPDX-License-Identifier: GPL-2.0
/*
 * 7.2's raw_tp_writable_reject_bad_access, negative_var_off_past_end: move the buffer pointer
 * back by 8, then read one byte at +16, i.e. at offset 8, one past the 8-byte buffer. The
 * verifier must count both offsets so attach refuses with EINVAL; a kernel that only looks
 * at the +16 (or only at the -8) lets the program read past the buffer. C would fold the two
 * constants into one offset, hence the assembly.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

__u64 sink = 0;

SEC("raw_tp.w/bpf_testmod_test_writable_bare")
int reject_bad_access(__u64 *ctx)
{
	__u64 value;

	asm volatile("r1 = *(u64 *)(%[ctx] + 0)\n\t"
		     "r1 += -8\n\t"
		     "%[value] = *(u8 *)(r1 + 16)"
		     : [value] "=r"(value)
		     : [ctx] "r"(ctx)
		     : "r1");
	sink = value;
	return 0;
}

char _license[] SEC("license") = "GPL";
