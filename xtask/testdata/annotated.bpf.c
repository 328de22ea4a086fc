// Test input for decl_tags.rs: programs annotated like selftests' bpf_misc.h annotates them.
// Rebuild: clang -target bpf -O2 -g -c annotated.bpf.c -o annotated.bpf.o
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __tag(text) __attribute__((btf_decl_tag(text)))

SEC("raw_tracepoint.w")
__tag("comment:test_description=negative offset")
__tag("comment:test_expect_failure")
__tag("comment:test_expect_msg=first message")
__tag("comment:test_expect_msg=second message")
__tag("comment:test_prog_flags=BPF_F_ANY_ALIGNMENT")
int rejects_negative_offset(unsigned long long *ctx)
{
	return *(int *)(ctx[0] - 8);
}

SEC("raw_tracepoint.w")
__tag("comment:test_expect_success")
int accepts(unsigned long long *ctx)
{
	return 0;
}

SEC("raw_tracepoint.w")
int untagged(unsigned long long *ctx)
{
	return 1;
}

char _license[] SEC("license") = "GPL";
