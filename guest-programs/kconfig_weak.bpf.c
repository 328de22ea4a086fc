// SPDX-License-Identifier: GPL-2.0
/*
 * A weak `__kconfig` extern nobody knows: libbpf leaves an unknown weak LINUX_* extern zero
 * (a strong one fails the load). Beside it the known LINUX_KERNEL_VERSION, of another size, so
 * the `.kconfig` layout has two entries. The program returns 100 + the weak value through
 * bpf_test_finish (100 when it is zero), and 0 if the known one is missing.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern __u64 LINUX_WTP_NO_SUCH_KNOB __kconfig __weak;

SEC("raw_tp.w/bpf_test_finish")
int kconfig_weak(__u64 *ctx)
{
	int *err = (void *)ctx[0];

	*err = LINUX_KERNEL_VERSION ? 100 + (int)LINUX_WTP_NO_SUCH_KNOB : 0;
	return 0;
}

char _license[] SEC("license") = "GPL";
