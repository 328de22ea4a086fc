/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM wtp_own_tp

#if !defined(_WTP_OWN_TP_EVENTS_H) || defined(TRACE_HEADER_MULTI_READ)
#define _WTP_OWN_TP_EVENTS_H

#include <linux/tracepoint.h>
#include "wtp_own_tp.h"

/*
 * A writable tracepoint the way nbd declares nbd_send_request: an event class and
 * DEFINE_EVENT_WRITABLE, with the writable size = sizeof(*first argument). This form works
 * on every kernel from 5.2 on and keeps its name everywhere.
 *
 * The other form, DECLARE_TRACE_WRITABLE (a "bare" tracepoint, as bpf_testmod's), is not
 * usable here: 5.10's include/trace/bpf_probe.h does not make bare tracepoints visible to
 * BPF at all, and from 6.16 DECLARE_TRACE appends `_tp` to the name (and to the trace_
 * call): a module using it picks the call by LINUX_VERSION_CODE and the case maps the name
 * (see README.md, "Testing your own writable tracepoint").
 */
DECLARE_EVENT_CLASS(wtp_own_class,
	TP_PROTO(struct wtp_own_buf *buf, int reads),
	TP_ARGS(buf, reads),
	TP_STRUCT__entry(
		__field(int, value)
		__field(int, reads)
	),
	TP_fast_assign(
		__entry->value = buf->value;
		__entry->reads = reads;
	),
	TP_printk("value=%d reads=%d", __entry->value, __entry->reads)
);

/*
 * DEFINE_EVENT_WRITABLE exists only while define_trace.h includes this header for BPF
 * (include/trace/bpf_probe.h); every other pass takes the plain event.
 */
#undef WTP_OWN_DEFINE_EVENT
#ifdef DEFINE_EVENT_WRITABLE
#define WTP_OWN_DEFINE_EVENT(template, call, proto, args, size) \
	DEFINE_EVENT_WRITABLE(template, call, PARAMS(proto), PARAMS(args), size)
#else
#define WTP_OWN_DEFINE_EVENT(template, call, proto, args, size) \
	DEFINE_EVENT(template, call, PARAMS(proto), PARAMS(args))
#endif

WTP_OWN_DEFINE_EVENT(wtp_own_class, wtp_own_rewrite,
	TP_PROTO(struct wtp_own_buf *buf, int reads),
	TP_ARGS(buf, reads),
	sizeof(struct wtp_own_buf)
);

#endif /* _WTP_OWN_TP_EVENTS_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#define TRACE_INCLUDE_FILE wtp_own_tp-events
#include <trace/define_trace.h>
