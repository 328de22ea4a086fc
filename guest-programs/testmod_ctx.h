/* SPDX-License-Identifier: GPL-2.0 */
/* bpf_testmod_test_writable_bare's writable buffer: 8 bytes, early_ret at 0, val at 4. */
#ifndef TESTMOD_CTX_H
#define TESTMOD_CTX_H

struct bpf_testmod_test_writable_ctx {
	_Bool early_ret;
	int val;
};

#define TESTMOD_WRITABLE_SIZE 8

#endif
