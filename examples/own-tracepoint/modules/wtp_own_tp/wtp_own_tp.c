// SPDX-License-Identifier: GPL-2.0
/*
 * A module with a writable tracepoint of its own, fired from a /proc file:
 * reading /proc/wtp_own_tp fills a struct wtp_own_buf (magic, value = the initial value,
 * tag = "kernel"), runs the tracepoint wtp_own_rewrite(buf, reads) and returns
 * "value=<value> tag=<tag>\n" as the buffer is afterwards: a writable program's rewrite is
 * what the reader sees. Writing a number to the file sets the initial value.
 */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/uaccess.h>
#include <linux/kernel.h>
#include <linux/string.h>

#define CREATE_TRACE_POINTS
#include "wtp_own_tp-events.h"

#define WTP_OWN_MAGIC 0x77747031

static int initial = 42;
static int reads;

static ssize_t wtp_own_read(struct file *file, char __user *ubuf, size_t len, loff_t *off)
{
	struct wtp_own_buf buf = { .magic = WTP_OWN_MAGIC, .value = initial };
	char text[64];
	int n;

	/* One event per read from the start: `cat` reads again at the end and gets 0. */
	if (*off)
		return 0;
	strscpy(buf.tag, "kernel", sizeof(buf.tag));
	trace_wtp_own_rewrite(&buf, ++reads);
	buf.tag[sizeof(buf.tag) - 1] = '\0';
	if (buf.magic != WTP_OWN_MAGIC)
		return -EIO;
	n = scnprintf(text, sizeof(text), "value=%d tag=%s\n", buf.value, buf.tag);
	return simple_read_from_buffer(ubuf, len, off, text, n);
}

static ssize_t wtp_own_write(struct file *file, const char __user *ubuf, size_t len, loff_t *off)
{
	int value, err;

	err = kstrtoint_from_user(ubuf, len, 0, &value);
	if (err)
		return err;
	initial = value;
	return len;
}

static const struct proc_ops wtp_own_ops = {
	.proc_read = wtp_own_read,
	.proc_write = wtp_own_write,
	.proc_lseek = default_llseek,
};

static int __init wtp_own_init(void)
{
	if (!proc_create("wtp_own_tp", 0666, NULL, &wtp_own_ops))
		return -ENOMEM;
	return 0;
}

static void __exit wtp_own_exit(void)
{
	remove_proc_entry("wtp_own_tp", NULL);
}

module_init(wtp_own_init);
module_exit(wtp_own_exit);
MODULE_DESCRIPTION("wtp example: a writable tracepoint of one's own");
MODULE_LICENSE("GPL");
