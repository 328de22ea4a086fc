// SPDX-License-Identifier: GPL-2.0
/*
 * A `__kconfig` extern: LINUX_KERNEL_VERSION is filled in by the loader (from uname, as
 * KERNEL_VERSION(a, b, c)) in the `.kconfig` map. The program stores it into a global and
 * answers through bpf_test_finish whether it is a plausible version (5.10 <= v < 8.0): 1 yes,
 * 2 no.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define VERSION(a, b, c) (((a) << 16) + ((b) << 8) + (c))

extern unsigned int LINUX_KERNEL_VERSION __kconfig;

__u32 version = 0;

SEC("raw_tp.w/bpf_test_finish")
int kconfig_version(__u64 *ctx)
{
	int *err = (void *)ctx[0];
	unsigned int v = LINUX_KERNEL_VERSION;

	version = v;
	*err = v >= VERSION(5, 10, 0) && v < VERSION(8, 0, 0) ? 1 : 2;
	return 0;
}

char _license[] SEC("license") = "GPL";
