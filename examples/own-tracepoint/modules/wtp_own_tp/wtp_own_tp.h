/* SPDX-License-Identifier: GPL-2.0 */
/* The buffer a BPF program may rewrite: 16 bytes, the tracepoint's writable size. */
#ifndef _WTP_OWN_TP_H
#define _WTP_OWN_TP_H

#include <linux/types.h>

struct wtp_own_buf {
	__u32 magic;	/* 0x77747031 ("wtp1"), set by the module */
	__s32 value;	/* what the read reports; the module sets `initial` (write it) */
	char tag[8];	/* a short word the read reports; "kernel" */
};

#endif
