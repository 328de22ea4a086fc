/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The 28 bytes nbd_send_request hands a writable program: struct nbd_request of
 * include/uapi/linux/nbd.h, all fields big-endian. The natural layout of this struct puts
 * every field at the same offset as the kernel's packed one (0, 4, 8, 16, 24); only the
 * trailing padding differs, and programs never touch it.
 */
#ifndef NBD_REQUEST_H
#define NBD_REQUEST_H

#include <linux/types.h>

struct nbd_request_wire {
	__be32 magic;
	__be32 type;
	__u64 cookie;
	__be64 from;
	__be32 len;
};

#define NBD_REQUEST_SIZE 28
#define NBD_CMD_READ 0

#endif
