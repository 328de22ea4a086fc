//! How the guest fires a swept tracepoint, and what the model says one firing shows. Pure.
//!
//! The kernel says how big a tracepoint's buffer is ([`crate::kernel::raw_tp`]), never what
//! fires it or where its bytes show: that is knowledge of each tracepoint's code, kept here.
//! - `bpf_test_finish` (net/bpf/test_run.c): BPF_PROG_TEST_RUN of any program ends in
//!   `trace_bpf_test_finish(&err)` with `err` = 0, and the syscall returns `err` afterwards:
//!   the whole 4-byte buffer comes back.
//! - `bpf_testmod_test_writable_bare` (bpf_testmod.c, `bpf_testmod_test_read`, the same in
//!   6.1.192, 6.12.117 and 7.2.13): a 64-byte read of `/sys/kernel/bpf_testmod` runs
//!   `struct bpf_testmod_test_writable_ctx writable = { .val = 1024, };` then the tracepoint,
//!   then `if (writable.early_ret) return snprintf(buf, len, "%d\n", writable.val);` and
//!   otherwise fails with EIO. The struct is `{ bool early_ret; int val; }`: `early_ret` at
//!   0, 3 padding bytes (1–3), `val` at 4. What shows is `early_ret` and, when set, `val`.
//! - anything else (nbd_send_request, a module's own tracepoint) is loaded and attached, never
//!   fired; [`Trigger::None`] says why.

use protocol::{ReadAnswer, SweepSeen, SweepTrigger};

use super::model::Effect;
use super::Tracepoint;

/// How a sweep's tracepoint is fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// BPF_PROG_TEST_RUN of a trivial socket filter (`bpf_test_finish`).
    TestRun,
    /// bpf_testmod's 64-byte read (`bpf_testmod_test_writable_bare`).
    TestmodRead,
    /// Not fired; the reason, in words.
    None(&'static str),
}

/// Why nbd_send_request is not fired.
pub const NBD_NOT_FIRED: &str = "its buffer is the NBD request about to go on the wire \
     (magic, type, handle, offset, length): a program that rewrites the magic, type or handle \
     breaks the device for the rest of the boot, so the sweep loads and attaches only";

/// Why a tracepoint the sweep has no trigger for is not fired.
pub const UNKNOWN_NOT_FIRED: &str = "the sweep knows no way to fire this tracepoint or to see \
     its buffer (a module's own tracepoint fires where its code says), so it loads and \
     attaches only";

impl Trigger {
    /// The trigger for a tracepoint, by the name case files know it by.
    pub fn of(tp: &Tracepoint) -> Trigger {
        match tp.name.as_str() {
            "bpf_test_finish" => Trigger::TestRun,
            "bpf_testmod_test_writable_bare" => Trigger::TestmodRead,
            "nbd_send_request" => Trigger::None(NBD_NOT_FIRED),
            _ => Trigger::None(UNKNOWN_NOT_FIRED),
        }
    }

    /// As the guest's plan says it.
    pub fn protocol(self) -> SweepTrigger {
        match self {
            Trigger::TestRun => SweepTrigger::TestRun,
            Trigger::TestmodRead => SweepTrigger::TestmodRead,
            Trigger::None(_) => SweepTrigger::None,
        }
    }

    pub fn fires(self) -> bool {
        !matches!(self, Trigger::None(_))
    }

    /// What one firing of the tracepoint shows in words (the grid's line).
    pub fn words(self) -> String {
        match self {
            Trigger::TestRun => "fired by BPF_PROG_TEST_RUN of a socket filter: the 4 bytes \
                                 come back as its return value"
                .into(),
            Trigger::TestmodRead => "fired by a 64-byte read of /sys/kernel/bpf_testmod: \
                                     early_ret (offset 0) and, when set, val (offset 4) show \
                                     as the read's answer"
                .into(),
            Trigger::None(why) => format!("not fired: {why}"),
        }
    }
}

/// bpf_test_finish's buffer before the program ran: the test run's `err`, 0.
pub const TEST_RUN_BEFORE: [u8; 4] = [0; 4];
/// What bpf_testmod_test_read puts in `val` before the tracepoint.
pub const TESTMOD_VAL_BEFORE: i32 = 1024;
/// The read's errno when `early_ret` stays false.
pub const EIO: i32 = 5;
/// The padding bytes between `early_ret` and `val`: C leaves their value unspecified, so the
/// model tries these fills and says only what all of them agree on.
const PADDING_FILLS: [u8; 3] = [0x00, 0xff, 0x5a];

/// What the model says one firing shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prediction {
    Seen(SweepSeen),
    /// The model cannot say: why.
    CannotSay(String),
}

/// What one firing shows by `trigger`, after the program's `effects` (the model's bytes a
/// store changes); `None` for a trigger that never fires.
pub fn predict(trigger: SweepTrigger, effects: &[Effect]) -> Option<Prediction> {
    match trigger {
        SweepTrigger::TestRun => Some(match apply(&TEST_RUN_BEFORE, effects) {
            Some(after) => Prediction::Seen(SweepSeen::Buffer(after)),
            None => Prediction::CannotSay(
                "a store outside the buffer, or of a value the model does not know".into(),
            ),
        }),
        SweepTrigger::TestmodRead => Some(testmod_read(effects)),
        SweepTrigger::None => None,
    }
}

/// The trigger whose firing shows `seen`.
pub fn trigger_of(seen: &SweepSeen) -> SweepTrigger {
    match seen {
        SweepSeen::Buffer(_) => SweepTrigger::TestRun,
        SweepSeen::Read(_) => SweepTrigger::TestmodRead,
    }
}

/// The buffer after the effects, in order; `None` where one reaches past it or stores a
/// value the model does not know.
pub fn apply(before: &[u8], effects: &[Effect]) -> Option<Vec<u8>> {
    effects
        .iter()
        .try_fold(before.to_vec(), |bytes, effect| effect.apply(&bytes))
}

/// bpf_testmod's struct before the tracepoint, its padding filled with `fill`.
pub fn testmod_before(fill: u8) -> [u8; 8] {
    let mut bytes = [fill; 8];
    bytes[0] = 0;
    bytes[4..].copy_from_slice(&TESTMOD_VAL_BEFORE.to_le_bytes());
    bytes
}

/// What the read answers for the struct's bytes after the program: `early_ret` is a `bool`
/// the kernel tests as `if (writable.early_ret)`; a program may store any byte there, and
/// the model takes every non-zero byte as true (what gcc's `cmpb $0` does; C calls a `_Bool`
/// holding another value than 0 or 1 undefined).
pub fn testmod_answer(bytes: &[u8; 8]) -> ReadAnswer {
    if bytes[0] == 0 {
        return ReadAnswer::Errno(EIO);
    }
    let val = i32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    ReadAnswer::Text(format!("{val}\n"))
}

fn testmod_read(effects: &[Effect]) -> Prediction {
    let mut answers = PADDING_FILLS.iter().map(|fill| {
        let after = apply(&testmod_before(*fill), effects)?;
        Some(testmod_answer(&after.try_into().ok()?))
    });
    let Some(Some(first)) = answers.next() else {
        return Prediction::CannotSay(
            "a store outside the buffer, or of a value the model does not know".into(),
        );
    };
    match answers.all(|answer| answer.as_ref() == Some(&first)) {
        true => Prediction::Seen(SweepSeen::Read(first)),
        false => Prediction::CannotSay(
            "what shows depends on the padding bytes 1–3, whose value C leaves unspecified".into(),
        ),
    }
}

/// A firing's answer in a few characters: a buffer as hex, a read as its text or errno.
pub fn shown(seen: &SweepSeen) -> String {
    match seen {
        SweepSeen::Buffer(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        SweepSeen::Read(ReadAnswer::Text(text)) => format!("read {text:?}"),
        SweepSeen::Read(ReadAnswer::Errno(errno)) => {
            format!("read fails with {}", protocol::errno_name(*errno))
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::cases::sweep::family::{buffer, generate};
    use crate::cases::sweep::insn::{AtomicOp, Size};
    use crate::cases::sweep::model::predict as model;
    use crate::cases::sweep::{Move, Op, ProgType};

    fn testmod() -> Tracepoint {
        Tracepoint::new("bpf_testmod_test_writable_bare", 8, 1)
    }

    fn text(val: i32) -> Option<Prediction> {
        Some(Prediction::Seen(SweepSeen::Read(ReadAnswer::Text(
            format!("{val}\n"),
        ))))
    }

    fn fails() -> Option<Prediction> {
        Some(Prediction::Seen(SweepSeen::Read(ReadAnswer::Errno(EIO))))
    }

    fn cannot_say() -> Option<Prediction> {
        None
    }

    /// The read after one program at `off`: `None` in `want` means "the model cannot say".
    #[rstest]
    // Loads change nothing: early_ret stays false.
    #[case::load(Op::Ldx, Size::DW, 0, fails())]
    // Any non-zero byte into early_ret sets it; val keeps the kernel's 1024.
    #[case::st_byte_early_ret(Op::St, Size::B, 0, text(1024))]
    #[case::stx_byte_early_ret(Op::Stx, Size::B, 0, text(1024))]
    // A store into val alone shows nothing: early_ret stays false.
    #[case::val_alone(Op::Stx, Size::W, 4, fails())]
    // A store into the padding alone shows nothing either.
    #[case::padding(Op::Stx, Size::H, 1, fails())]
    // 8 bytes from 0: early_ret = 0x11 (true), val = 0x88776655.
    #[case::stx_dw(Op::Stx, Size::DW, 0, text(0x8877_6655_u32 as i32))]
    // The immediate sign-extends: early_ret 0xd1, val = 0xffffffff = -1.
    #[case::st_dw(Op::St, Size::DW, 0, text(-1))]
    // 4 bytes from 0 set early_ret and the padding, val stays.
    #[case::stx_w_at_0(Op::Stx, Size::W, 0, text(1024))]
    // xchg 8 bytes: as stx.
    #[case::xchg_dw(Op::Atomic(AtomicOp::Xchg), Size::DW, 0, text(0x8877_6655_u32 as i32))]
    // add 4 at 0: early_ret 0 + 0x08 = 8, true; val untouched.
    #[case::add_w(Op::Atomic(AtomicOp::Add), Size::W, 0, text(1024))]
    // add 8 at 0: the carry out of the padding into val depends on the padding.
    #[case::add_dw(Op::Atomic(AtomicOp::Add), Size::DW, 0, cannot_say())]
    // cmpxchg 4 at 0 compares the padding too.
    #[case::cmpxchg_w(Op::Atomic(AtomicOp::Cmpxchg), Size::W, 0, cannot_say())]
    // cmpxchg 4 at 4 compares val (1024) with 0: unchanged, and early_ret stays false.
    #[case::cmpxchg_val(Op::Atomic(AtomicOp::Cmpxchg), Size::W, 4, fails())]
    fn the_read_shows_early_ret_and_val(
        #[case] op: Op,
        #[case] size: Size,
        #[case] off: i32,
        #[case] want: Option<Prediction>,
    ) {
        let tp = testmod();
        let program = buffer(
            &tp,
            ProgType::RawTracepointWritable,
            op,
            size,
            off,
            Move::None,
        );
        let expected = model(&program, &tp);
        assert_eq!(expected.attach, Some(Ok(())), "{}", program.name);
        let got = predict(SweepTrigger::TestmodRead, &expected.effects).unwrap();
        match want {
            Some(want) => assert_eq!(Some(got), Some(want), "{}", program.name),
            None => assert!(
                matches!(got, Prediction::CannotSay(ref why) if why.contains("padding")),
                "{}: {got:?}",
                program.name
            ),
        }
    }

    #[test]
    fn a_byte_of_val_changes_what_the_read_says() {
        // The top byte of val becomes 0x11 and early_ret is set by a second store.
        let effects = [
            Effect::Store {
                offset: 7,
                bytes: vec![0x11],
            },
            Effect::Store {
                offset: 0,
                bytes: vec![1],
            },
        ];
        assert_eq!(
            predict(SweepTrigger::TestmodRead, &effects),
            Some(Prediction::Seen(SweepSeen::Read(ReadAnswer::Text(
                format!("{}\n", 0x1100_0400)
            ))))
        );
    }

    #[test]
    fn the_test_runs_buffer_is_the_four_bytes_after_the_effects() {
        let store = Effect::Store {
            offset: 2,
            bytes: vec![0x11, 0x22],
        };
        assert_eq!(
            predict(SweepTrigger::TestRun, std::slice::from_ref(&store)),
            Some(Prediction::Seen(SweepSeen::Buffer(vec![0, 0, 0x11, 0x22])))
        );
        let past = Effect::Store {
            offset: 4,
            bytes: vec![1],
        };
        assert!(matches!(
            predict(SweepTrigger::TestRun, &[past]),
            Some(Prediction::CannotSay(_))
        ));
        assert_eq!(predict(SweepTrigger::None, &[store]), None);
    }

    #[test]
    fn each_tracepoint_has_its_trigger() {
        let of = |name: &str| Trigger::of(&Tracepoint::new(name, 8, 1));
        assert_eq!(of("bpf_test_finish"), Trigger::TestRun);
        assert_eq!(of("bpf_testmod_test_writable_bare"), Trigger::TestmodRead);
        assert_eq!(of("nbd_send_request"), Trigger::None(NBD_NOT_FIRED));
        assert_eq!(of("wtp_own_rewrite"), Trigger::None(UNKNOWN_NOT_FIRED));
        assert!(!of("wtp_own_rewrite").fires());
        assert_eq!(of("bpf_test_finish").protocol(), SweepTrigger::TestRun);
        assert!(of("nbd_send_request")
            .words()
            .starts_with("not fired: its buffer"));
    }

    #[test]
    fn every_fired_testmod_program_is_predicted_or_says_why_not() {
        let tp = testmod();
        let mut cannot = Vec::new();
        for program in generate(&tp) {
            let expected = model(&program, &tp);
            if !matches!(expected.attach, Some(Ok(()))) || expected.writes_outside(&tp) {
                continue;
            }
            if let Some(Prediction::CannotSay(_)) =
                predict(SweepTrigger::TestmodRead, &expected.effects)
            {
                cannot.push(program.name);
            }
        }
        // Only these reach into the padding and let it decide: an 8-byte add carries out of
        // it into val, a 4-byte cmpxchg compares it with 0 (the 8-byte one compares val too,
        // which is 1024, so it never stores).
        assert_eq!(
            cannot,
            [
                "sweep.bpf_testmod_test_writable_bare.add.dw.off0",
                "sweep.bpf_testmod_test_writable_bare.cmpxchg.w.off0"
            ]
        );
    }

    #[test]
    fn what_shows_reads_short() {
        assert_eq!(shown(&SweepSeen::Buffer(vec![42, 0, 0, 0])), "2a000000");
        assert_eq!(
            shown(&SweepSeen::Read(ReadAnswer::Text("1024\n".into()))),
            r#"read "1024\n""#
        );
        assert_eq!(
            shown(&SweepSeen::Read(ReadAnswer::Errno(5))),
            "read fails with EIO"
        );
    }
}
