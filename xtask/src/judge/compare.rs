//! Expectations against outcomes: what a case said should happen (on this kernel) next to what
//! the kernel answered. Pure functions; [`crate::judge`] puts them together with snapshots.

use protocol::{CaseResult, Outcome};

use crate::cases::{Case, CaseOutcome, Expect, LogPattern};
use crate::judge::normalise;

/// Differences between what a case expects on `kernel` and what happened; empty means it
/// passed.
pub fn deviations(case: &Case, kernel: &str, outcome: &CaseOutcome) -> Vec<String> {
    let result = match outcome {
        CaseOutcome::Ran(result) => result,
        CaseOutcome::Unsupported { .. } => return Vec::new(),
        CaseOutcome::CompileError { message } => return vec![format!("compile error: {message}")],
        CaseOutcome::NotRun { reason } => return vec![format!("not run: {reason}")],
        CaseOutcome::Probe(_) => return Vec::new(),
    };
    let mut found = Vec::new();
    let (load, _) = case.load_on(kernel);
    if !matches(load, &result.load.outcome) {
        found.push(format!(
            "load: expected {load}, got {}",
            describe(&result.load.outcome)
        ));
    }
    for words in &case.log_contains {
        if !result.load.verifier_log.contains(words.as_str()) {
            found.push(format!("load: the verifier log does not contain {words:?}"));
        }
    }
    found.extend(log_sequence_problem(
        &case.log_sequence,
        &result.load.verifier_log,
    ));
    if result.steps.len() != case.steps.len() {
        found.push(format!(
            "expected {} step results, got {}",
            case.steps.len(),
            result.steps.len()
        ));
    }
    found.extend(second_opinion(result));
    for (index, (spec, record)) in case.steps.iter().zip(&result.steps).enumerate() {
        let (expect, _) = spec.expect_on(kernel);
        if !matches(expect, &record.outcome) {
            found.push(format!(
                "step {} ({}): expected {expect}, got {}",
                index + 1,
                record.step.name(),
                describe(&record.outcome)
            ));
        }
    }
    found
}

/// Where `log` fails `patterns` as upstream's test_loader.c (`validate_msgs`) matches them:
/// positive patterns one after the other, each searched from the end of the previous match
/// (a pattern not found leaves the position where it was); a `not` pattern must not occur
/// between the end of the positive match before it and the start of the one after it. The
/// first failure, as test_loader reports only that one.
pub fn log_sequence_problem(patterns: &[LogPattern], log: &str) -> Option<String> {
    let compiled: Vec<Matcher> = patterns.iter().map(Matcher::new).collect();
    let mut matches: Vec<Option<(usize, usize)>> = vec![None; patterns.len()];
    let mut from = 0;
    for (index, matcher) in compiled.iter().enumerate() {
        if patterns[index].not {
            continue;
        }
        if let Some((start, end)) = matcher.find(log, from) {
            matches[index] = Some((start, end));
            from = end;
        }
    }
    for (index, pattern) in patterns.iter().enumerate() {
        if !pattern.not {
            if matches[index].is_none() {
                return Some(format!(
                    "load: the verifier log does not match {:?} (upstream's __msg, pattern {} of {}, after the ones before it)",
                    pattern.text,
                    index + 1,
                    patterns.len()
                ));
            }
            continue;
        }
        let start = (matches[..index].iter().rev())
            .find_map(|m| m.map(|(_, end)| end))
            .unwrap_or(0);
        let end = (matches[index + 1..].iter())
            .zip(&patterns[index + 1..])
            .find(|(_, p)| !p.not)
            .and_then(|(m, _)| m.map(|(start, _)| start))
            .unwrap_or(log.len());
        let found = compiled[index].find(log, start);
        if found.is_some_and(|(_, match_end)| match_end <= end) {
            return Some(format!(
                "load: the verifier log contains {:?} where upstream's __not_msg forbids it",
                pattern.text
            ));
        }
    }
    None
}

/// One pattern, ready to search: a substring, or (test_loader's `compile_regex`) the literal
/// parts escaped and the `{{...}}` parts as regular expressions, `.` not matching a newline
/// and `^`/`$` at line ends (POSIX `REG_NEWLINE`).
enum Matcher {
    Literal(String),
    Regex(Option<regex::Regex>),
}

impl Matcher {
    fn new(pattern: &LogPattern) -> Self {
        if !pattern.regex {
            return Matcher::Literal(pattern.text.clone());
        }
        let mut expression = String::from("(?m)");
        for (index, part) in pattern.text.split("{{").enumerate() {
            let (inside, outside) = match (index, part.split_once("}}")) {
                (0, _) => ("", part),
                (_, Some((inside, outside))) => (inside, outside),
                (_, None) => (part, ""),
            };
            expression.push_str(inside);
            expression.push_str(&regex::escape(outside));
        }
        Matcher::Regex(regex::Regex::new(&expression).ok())
    }

    /// The first match at or after `from`: its start and end.
    fn find(&self, log: &str, from: usize) -> Option<(usize, usize)> {
        let rest = log.get(from..)?;
        let (start, end) = match self {
            Matcher::Literal(text) => rest.find(text.as_str()).map(|at| (at, at + text.len()))?,
            Matcher::Regex(regex) => regex.as_ref()?.find(rest).map(|m| (m.start(), m.end()))?,
        };
        Some((from + start, from + end))
    }
}

/// Why the case counts as unsupported on this kernel although it ran: a step answered an
/// errno its case declares as "this kernel lacks the feature".
pub fn unsupported_reason(case: &Case, outcome: &CaseOutcome) -> Option<String> {
    let CaseOutcome::Ran(result) = outcome else {
        return None;
    };
    case.steps
        .iter()
        .zip(&result.steps)
        .enumerate()
        .find_map(|(index, (spec, record))| {
            let Outcome::Errno { name, .. } = &record.outcome else {
                return None;
            };
            spec.unsupported_if.contains(name).then(|| {
                format!(
                    "step {} ({}) answered {name}",
                    index + 1,
                    record.step.name()
                )
            })
        })
}

/// The known deviations a case declares for `kernel` (shown in the report with their reason).
pub fn known_deviations(case: &Case, kernel: &str) -> Vec<String> {
    let load = case.load_on(kernel).1.map(|why| format!("load: {why}"));
    let steps = case.steps.iter().enumerate().filter_map(|(index, step)| {
        step.expect_on(kernel)
            .1
            .map(|why| format!("step {} ({}): {why}", index + 1, step.step.name()))
    });
    load.into_iter().chain(steps).collect()
}

pub fn matches(expect: &Expect, outcome: &Outcome) -> bool {
    match (expect, outcome) {
        (Expect::Ok, Outcome::Ok { .. }) => true,
        (Expect::Errno(expected), Outcome::Errno { name, .. }) => expected == name,
        (Expect::Fails, Outcome::Errno { .. }) => true,
        (Expect::Value(value), Outcome::Ok { value: Some(got) }) => value == got,
        _ => false,
    }
}

/// A short form of an outcome for tables and messages: `ok`, `ok 1024`, `EINVAL`, `error: ...`.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok { value: None } => "ok".into(),
        Outcome::Ok { value: Some(value) } => format!("ok {value}"),
        Outcome::Errno { name, .. } => name.clone(),
        Outcome::Error { message } => format!("error: {message}"),
    }
}

/// Where libbpf, loading the same object, program, globals and flags in the same guest,
/// disagrees with the own loader: the load's outcome (errno), the verifier's verdict when it
/// refused, the first attach, and then the effects: every step libbpf ran on its program
/// (up to the first one it does not run, [`protocol::Step::libbpf_skips`]) must have the
/// own loader's outcome, value included. A verdict is only worth what its loader is worth.
pub fn second_opinion(result: &CaseResult) -> Option<String> {
    if let Some(disagreement) = load_and_attach_opinion(result) {
        return Some(disagreement);
    }
    let libbpf = result.libbpf.as_ref()?;
    let text = step_disagreement(result, libbpf)?;
    Some(with_messages(text, libbpf))
}

/// How many of the own loader's steps libbpf runs: all when both loaded the program, up to
/// the first step libbpf does not run; none when either did not load it.
fn steps_libbpf_runs(result: &CaseResult) -> usize {
    let loaded = result.load.outcome.is_ok()
        && result
            .libbpf
            .as_ref()
            .is_some_and(|libbpf| libbpf.load.is_ok());
    match loaded {
        true => result
            .steps
            .iter()
            .position(|record| record.step.libbpf_skips().is_some())
            .unwrap_or(result.steps.len()),
        false => 0,
    }
}

/// The first step whose outcome libbpf's program did not reproduce, in words.
fn step_disagreement(result: &CaseResult, libbpf: &protocol::LibbpfAnswer) -> Option<String> {
    let expected = steps_libbpf_runs(result);
    if libbpf.steps.len() != expected {
        return Some(format!(
            "libbpf disagrees: it ran {} of the case's steps on its program, {expected} expected",
            libbpf.steps.len()
        ));
    }
    result
        .steps
        .iter()
        .zip(&libbpf.steps)
        .enumerate()
        .find(|(_, (own, theirs))| {
            own.step != theirs.step || !same_effect(&own.outcome, &theirs.outcome)
        })
        .map(|(index, (own, theirs))| {
            format!(
                "libbpf disagrees at step {} {}: own {}, libbpf {}",
                index + 1,
                own.step.name(),
                step_value(&own.outcome),
                step_value(&theirs.outcome)
            )
        })
}

/// The steps of a case the host could not compare with libbpf's, and why: libbpf's run stops
/// at the first step that cannot run twice in a boot. `None` when every step was compared (or
/// there was nothing to compare: a loader did not load the program).
pub fn libbpf_unchecked(result: &CaseResult) -> Option<String> {
    if result.libbpf.is_none() || !result.load.outcome.is_ok() {
        return None;
    }
    let ran = steps_libbpf_runs(result);
    let first = result.steps.get(ran)?;
    let reason = first.step.libbpf_skips()?;
    let compared = match ran {
        0 => "libbpf ran none of the steps".to_owned(),
        1 => "libbpf ran step 1 only".to_owned(),
        n => format!("libbpf ran steps 1-{n} only"),
    };
    let after = match result.steps.len() - ran - 1 {
        0 => String::new(),
        1 => " and the one after it".to_owned(),
        n => format!(" and the {n} after it"),
    };
    Some(format!(
        "{compared}; step {} ({}){after} not compared: {reason}",
        ran + 1,
        first.step.name(),
    ))
}

/// Two runs of one step had the same effect: the same errno, or the same value (an `ok` with
/// none on both sides); a step neither harness run could do is no disagreement.
fn same_effect(own: &Outcome, theirs: &Outcome) -> bool {
    match (own, theirs) {
        (Outcome::Ok { value: a }, Outcome::Ok { value: b }) => a == b,
        (Outcome::Errno { errno: a, .. }, Outcome::Errno { errno: b, .. }) => a == b,
        (Outcome::Error { .. }, Outcome::Error { .. }) => true,
        _ => false,
    }
}

/// A step's outcome in a disagreement: its value as JSON, `ok`, the errno's name, or
/// `error: ...`.
fn step_value(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok { value: Some(value) } => value.to_string(),
        other => describe(other),
    }
}

fn with_messages(mut text: String, libbpf: &protocol::LibbpfAnswer) -> String {
    if !libbpf.messages.is_empty() {
        text.push_str(&format!(" (libbpf said: {})", libbpf.messages.join(" | ")));
    }
    text
}

/// The load and first attach half of [`second_opinion`].
fn load_and_attach_opinion(result: &CaseResult) -> Option<String> {
    let Some(libbpf) = &result.libbpf else {
        return Some("libbpf disagrees: it left no answer for this case".into());
    };
    let own_load = &result.load.outcome;
    let own_verdict = protocol::verifier_verdict(&result.load.verifier_log);
    // Neither presenting the object to the kernel is agreement too; a refusal must also
    // carry the same verdict.
    let load_agrees = match (own_load, &libbpf.load) {
        (Outcome::Error { .. }, Outcome::Error { .. }) => true,
        (own, theirs) => same_answer(own, theirs) && (own.is_ok() || own_verdict == libbpf.verdict),
    };
    let own_attach = result
        .steps
        .iter()
        .find(|record| matches!(record.step, protocol::Step::Attach { .. }))
        .map(|record| &record.outcome);
    let attach_agrees = match (own_attach, &libbpf.attach) {
        (Some(own), Some(theirs)) => same_answer(own, theirs),
        _ => true,
    };
    if load_agrees && attach_agrees {
        return None;
    }
    let own = loader_answer(own_load, own_verdict, own_attach);
    let theirs = loader_answer(&libbpf.load, &libbpf.verdict, libbpf.attach.as_ref());
    let text = format!("libbpf disagrees: own loader: {own}; libbpf: {theirs}");
    Some(with_messages(text, libbpf))
}

/// Whether neither loader's program reached the kernel: the own loader never got to
/// BPF_PROG_LOAD (no program type recorded) and libbpf failed before the verifier saw the
/// program. Their agreement then says nothing about the kernel (a wrong case or object).
pub fn neither_reached_the_kernel(result: &CaseResult) -> bool {
    let own_reached = result.load.prog_type.is_some();
    let libbpf_reached = result
        .libbpf
        .as_ref()
        .is_some_and(|libbpf| libbpf.reached_verifier || libbpf.load.is_ok());
    !own_reached && !libbpf_reached
}

fn same_answer(own: &Outcome, theirs: &Outcome) -> bool {
    match (own, theirs) {
        (Outcome::Ok { .. }, Outcome::Ok { .. }) => true,
        (Outcome::Errno { errno: a, .. }, Outcome::Errno { errno: b, .. }) => a == b,
        _ => false,
    }
}

/// `load ok, attach EINVAL` or `load EACCES "R6 invalid mem access 'scalar'"`.
fn loader_answer(load: &Outcome, verdict: &str, attach: Option<&Outcome>) -> String {
    let mut text = format!("load {}", short(load));
    if !load.is_ok() && !verdict.is_empty() {
        text.push_str(&format!(" {verdict:?}"));
    }
    if let (true, Some(attach)) = (load.is_ok(), attach) {
        text.push_str(&format!(", attach {}", short(attach)));
    }
    text
}

/// An outcome without its value (the own loader's attach names the tracepoint, libbpf's not).
fn short(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok { .. } => "ok".into(),
        other => describe(other),
    }
}

/// The outcome as it is judged: logs normalised (libbpf's verdict by the same rules).
pub fn normalised(mut outcome: CaseOutcome) -> CaseOutcome {
    if let CaseOutcome::Ran(result) = &mut outcome {
        result.load.verifier_log = normalise::verifier_log(&result.load.verifier_log);
        if let Some(libbpf) = &mut result.libbpf {
            libbpf.verdict = normalise::verifier_log(&libbpf.verdict);
        }
    }
    outcome
}

/// The outcome as it goes into a snapshot: libbpf's printed messages stay in the results
/// file and in a disagreement's text, not in the snapshot (they quote guest paths and
/// libbpf's wording, which is not the kernel's answer). libbpf's step outcomes stay out too:
/// the judge requires them to be the own loader's ([`second_opinion`]), so a snapshot that
/// passed holds them already, once.
pub fn for_snapshot(mut outcome: CaseOutcome) -> CaseOutcome {
    if let CaseOutcome::Ran(result) = &mut outcome {
        if let Some(libbpf) = &mut result.libbpf {
            libbpf.messages.clear();
            libbpf.steps.clear();
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use protocol::{LoadReport, Phase, Step, StepRecord};
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    fn pattern(text: &str, not: bool, regex: bool) -> LogPattern {
        LogPattern {
            text: text.into(),
            not,
            regex,
        }
    }

    /// test_loader.c's `validate_msgs`: in order, from the end of the previous match; a
    /// `__not_msg` only between its neighbours' matches; `{{...}}` a regex, the rest literal.
    #[rstest::rstest]
    #[case(&[("R1 ctx", false, false), ("R6 invalid", false, false)], None)]
    #[case(&[("R6 invalid", false, false), ("R1 ctx", false, false)], Some("\"R1 ctx\""))]
    #[case(&[("R1 ctx", false, false), ("safe", true, false), ("R6", false, false)], None)]
    #[case(&[("R1 ctx", false, false), ("R2 =", true, false), ("R6", false, false)], Some("__not_msg"))]
    #[case(&[("R6", false, false), ("R2 =", true, false)], None)]
    #[case(&[("off={{[0-9]+}}, var_off=(0x0", false, true)], None)]
    #[case(&[("off={{[a-z]+}}", false, true)], Some("does not match"))]
    #[case(&[("off={{[0-9]+}}", false, false)], Some("does not match"))]
    fn log_sequences_match_as_upstreams_loader_does(
        #[case] patterns: &[(&str, bool, bool)],
        #[case] problem: Option<&str>,
    ) {
        let log = "0: R1 ctx\n1: R2 = 7\n2: R6 invalid variable buffer offset: off=0, var_off=(0x0; 0xffffffff)\n";
        let patterns: Vec<LogPattern> = (patterns.iter())
            .map(|(t, n, r)| pattern(t, *n, *r))
            .collect();
        let found = log_sequence_problem(&patterns, log);
        match problem {
            None => assert_eq!(found, None),
            Some(words) => assert!(
                found.as_deref().is_some_and(|f| f.contains(words)),
                "{found:?}"
            ),
        }
    }
    use crate::cases::CaseStep;

    #[rstest]
    #[case(Expect::Ok, Outcome::ok(), true)]
    #[case(Expect::Ok, Outcome::value(json!(3)), true)]
    #[case(Expect::Ok, Outcome::errno(22), false)]
    #[case(Expect::Errno("EINVAL".into()), Outcome::errno(22), true)]
    #[case(Expect::Errno("EINVAL".into()), Outcome::errno(13), false)]
    #[case(Expect::Errno("EINVAL".into()), Outcome::ok(), false)]
    #[case(Expect::Value(json!(1024)), Outcome::value(json!(1024)), true)]
    #[case(Expect::Value(json!(1024)), Outcome::value(json!(1023)), false)]
    #[case(Expect::Value(json!(1024)), Outcome::ok(), false)]
    #[case(Expect::Ok, Outcome::Error { message: "x".into() }, false)]
    #[case(Expect::Fails, Outcome::errno(13), true)]
    #[case(Expect::Fails, Outcome::ok(), false)]
    #[case(Expect::Fails, Outcome::Error { message: "x".into() }, false)]
    fn expectations_match_outcomes(
        #[case] expect: Expect,
        #[case] outcome: Outcome,
        #[case] ok: bool,
    ) {
        assert_eq!(matches(&expect, &outcome), ok);
    }

    fn case(steps: Vec<CaseStep>) -> Case {
        Case {
            name: "c".into(),
            description: String::new(),
            program: None,
            function: None,
            requires: vec![],
            load: Expect::Ok,
            load_on: Default::default(),
            log_contains: vec![],
            log_sequence: Vec::new(),
            log_level: None,
            globals: Default::default(),
            flags: vec![],
            source: None,
            insns: None,
            steps,
        }
    }

    /// A result on which libbpf agrees (same load outcome, no attach, the same steps).
    fn ran(load: Outcome, steps: Vec<(Step, Outcome)>) -> CaseOutcome {
        let load_again = load.clone();
        CaseOutcome::Ran(crate::test_support::libbpf_ran_the_same(CaseResult {
            case: "c".into(),
            phase: Phase::Loaded,
            load: LoadReport {
                outcome: load,
                prog_type: Some(protocol::ProgType::RawTracepointWritable),
                insn_count: 3,
                verifier_log: String::new(),
                notes: Vec::new(),
            },
            steps: steps
                .into_iter()
                .map(|(step, outcome)| StepRecord { step, outcome })
                .collect(),
            libbpf: Some(protocol::LibbpfAnswer {
                load: load_again,
                ..crate::test_support::libbpf_loaded()
            }),
        }))
    }

    #[test]
    fn deviations_name_the_step_and_both_sides() {
        let spec = case(vec![
            CaseStep {
                step: Step::Attach {
                    tracepoint: None,
                    cookie: None,
                },
                expect: Expect::Ok,
                on: Default::default(),
                unsupported_if: vec!["EINVAL".into()],
            },
            CaseStep {
                step: Step::TestmodRead,
                expect: Expect::Errno("EIO".into()),
                on: Default::default(),
                unsupported_if: vec![],
            },
        ]);
        let good = ran(
            Outcome::ok(),
            vec![
                (
                    Step::Attach {
                        tracepoint: None,
                        cookie: None,
                    },
                    Outcome::value(json!("tp")),
                ),
                (Step::TestmodRead, Outcome::errno(5)),
            ],
        );
        assert!(deviations(&spec, "6.12", &good).is_empty());

        let bad = ran(
            Outcome::ok(),
            vec![
                (
                    Step::Attach {
                        tracepoint: None,
                        cookie: None,
                    },
                    Outcome::value(json!("tp")),
                ),
                (Step::TestmodRead, Outcome::value(json!({"len": 5}))),
            ],
        );
        assert_eq!(
            deviations(&spec, "6.12", &bad),
            vec![r#"step 2 (testmod_read): expected EIO, got ok {"len":5}"#]
        );

        let no_link = ran(
            Outcome::ok(),
            vec![(
                Step::Attach {
                    tracepoint: None,
                    cookie: None,
                },
                Outcome::errno(22),
            )],
        );
        assert_eq!(
            unsupported_reason(&spec, &no_link).as_deref(),
            Some("step 1 (attach) answered EINVAL")
        );
        assert_eq!(unsupported_reason(&spec, &good), None);

        let rejected = ran(Outcome::errno(13), vec![]);
        let found = deviations(&spec, "6.12", &rejected);
        assert_eq!(found[0], "load: expected ok, got EACCES");
        assert_eq!(found[1], "expected 2 step results, got 0");
    }

    fn with_libbpf(
        own_load: Outcome,
        own_log: &str,
        own_attach: Option<Outcome>,
        libbpf: protocol::LibbpfAnswer,
    ) -> CaseResult {
        let steps = own_attach
            .map(|outcome| {
                (
                    Step::Attach {
                        tracepoint: None,
                        cookie: None,
                    },
                    outcome,
                )
            })
            .into_iter()
            .collect();
        let CaseOutcome::Ran(mut result) = ran(own_load, steps) else {
            unreachable!()
        };
        result.load.verifier_log = own_log.into();
        result.libbpf = Some(libbpf);
        crate::test_support::libbpf_ran_the_same(result)
    }

    fn libbpf(load: Outcome, verdict: &str, attach: Option<Outcome>) -> protocol::LibbpfAnswer {
        protocol::LibbpfAnswer {
            load,
            verdict: verdict.into(),
            attach,
            ..crate::test_support::libbpf_loaded()
        }
    }

    const REFUSED_LOG: &str =
        "0: (79) r6 = *(u64 *)(r1 +0)\nR6 invalid mem access 'scalar'\nprocessed 2 insns";

    #[rstest]
    #[case::both_load_and_attach(
        with_libbpf(Outcome::ok(), "", Some(Outcome::value(json!("tp"))), libbpf(Outcome::ok(), "", Some(Outcome::ok()))),
        None)]
    #[case::both_refuse_with_the_same_words(
        with_libbpf(
            Outcome::errno(13),
            REFUSED_LOG,
            None,
            libbpf(Outcome::errno(13), "R6 invalid mem access 'scalar'", None)
        ),
        None
    )]
    #[case::libbpf_refuses_what_the_own_loader_loads(
        with_libbpf(Outcome::ok(), "", None, libbpf(Outcome::errno(13), "R6 invalid mem access 'scalar'", None)),
        Some("libbpf disagrees: own loader: load ok; libbpf: load EACCES \"R6 invalid mem access 'scalar'\""))]
    #[case::same_errno_other_words(
        with_libbpf(Outcome::errno(13), REFUSED_LOG, None, libbpf(Outcome::errno(13), "R1 type=ctx expected=fp", None)),
        Some("libbpf disagrees: own loader: load EACCES \"R6 invalid mem access 'scalar'\"; libbpf: load EACCES \"R1 type=ctx expected=fp\""))]
    #[case::attach_differs(
        with_libbpf(
            Outcome::ok(),
            "",
            Some(Outcome::errno(22)),
            libbpf(Outcome::ok(), "", Some(Outcome::ok()))
        ),
        Some("libbpf disagrees: own loader: load ok, attach EINVAL; libbpf: load ok, attach ok")
    )]
    #[case::own_loader_cannot_present_the_object(
        with_libbpf(Outcome::Error { message: "creating map counts: EINVAL".into() }, "", None, libbpf(Outcome::ok(), "", None)),
        Some("libbpf disagrees: own loader: load error: creating map counts: EINVAL; libbpf: load ok"))]
    fn libbpf_must_agree_with_the_own_loader(
        #[case] result: CaseResult,
        #[case] disagreement: Option<&str>,
    ) {
        assert_eq!(second_opinion(&result).as_deref(), disagreement);
    }

    #[test]
    fn a_disagreement_quotes_what_libbpf_printed_and_the_snapshot_does_not() {
        let mut answer = libbpf(Outcome::errno(22), "", None);
        answer.messages = vec!["libbpf: map 'counts': failed to create".into()];
        let result = with_libbpf(Outcome::ok(), "", None, answer);
        let text = second_opinion(&result).unwrap();
        assert!(
            text.ends_with("(libbpf said: libbpf: map 'counts': failed to create)"),
            "{text}"
        );
        let CaseOutcome::Ran(stored) = for_snapshot(CaseOutcome::Ran(result)) else {
            unreachable!()
        };
        assert!(stored.libbpf.unwrap().messages.is_empty());
    }

    /// tail_testmod_read as it ran on 6.1: attach, fill the prog array, read 64 bytes, on
    /// both loaders (libbpf's attach answer carries no value).
    fn tail_testmod_read() -> CaseResult {
        let CaseOutcome::Ran(mut result) = ran(
            Outcome::ok(),
            vec![
                (
                    Step::Attach {
                        tracepoint: None,
                        cookie: None,
                    },
                    Outcome::value(json!("bpf_testmod_test_writable_bare")),
                ),
                (
                    Step::ProgArraySet {
                        map: "jump".into(),
                        index: 0,
                        program: "callee_read".into(),
                    },
                    Outcome::ok(),
                ),
                (
                    Step::TestmodRead,
                    Outcome::value(json!({"len": 5, "text": "4242\n"})),
                ),
            ],
        ) else {
            unreachable!()
        };
        if let Some(libbpf) = &mut result.libbpf {
            libbpf.attach = Some(Outcome::ok());
        }
        result
    }

    #[test]
    fn libbpf_must_have_the_same_effects() {
        assert_eq!(second_opinion(&tail_testmod_read()), None);
        assert_eq!(libbpf_unchecked(&tail_testmod_read()), None);
    }

    /// The demonstration that effect agreement can fail: libbpf loads and attaches alike (the
    /// verdicts agree), but its program does something else, as a wrong relocation would make
    /// it (the callee's store of 4242 into `val` landing elsewhere): only the step's value
    /// tells.
    #[test]
    fn a_wrong_relocation_shows_in_the_step_values() {
        let mut result = tail_testmod_read();
        let libbpf = result.libbpf.as_mut().unwrap();
        libbpf.steps[2].outcome = Outcome::value(json!({"len": 2, "text": "0\n"}));
        assert_eq!(
            second_opinion(&result).as_deref(),
            Some(
                r#"libbpf disagrees at step 3 testmod_read: own {"len":5,"text":"4242\n"}, libbpf {"len":2,"text":"0\n"}"#
            )
        );
        // The load and attach alone would have called it agreement.
        assert_eq!(load_and_attach_opinion(&result), None);

        let mut errno = tail_testmod_read();
        errno.libbpf.as_mut().unwrap().steps[1].outcome = Outcome::errno(22);
        assert_eq!(
            second_opinion(&errno).as_deref(),
            Some("libbpf disagrees at step 2 prog_array_set: own ok, libbpf EINVAL")
        );

        let mut missing = tail_testmod_read();
        missing.libbpf.as_mut().unwrap().steps.truncate(1);
        assert_eq!(
            second_opinion(&missing).as_deref(),
            Some("libbpf disagrees: it ran 1 of the case's steps on its program, 3 expected")
        );
    }

    #[test]
    fn what_both_harness_runs_could_not_do_is_no_disagreement() {
        let mut result = tail_testmod_read();
        result.steps[1].outcome = Outcome::Error {
            message: "no map named `jump`".into(),
        };
        result.libbpf.as_mut().unwrap().steps[1].outcome = Outcome::Error {
            message: "libbpf has no map named `jump`".into(),
        };
        assert_eq!(second_opinion(&result), None);
    }

    /// nbd_rewrite: libbpf's run stops at nbd_connect; nothing of it is compared, which the
    /// row says with the reason, and an agreeing load and attach still pass.
    #[test]
    fn steps_libbpf_does_not_run_are_named_with_why() {
        let nbd = |steps: Vec<(Step, Outcome)>| {
            let CaseOutcome::Ran(result) = ran(Outcome::ok(), steps) else {
                unreachable!()
            };
            result
        };
        let attach = Step::Attach {
            tracepoint: None,
            cookie: None,
        };
        let result = nbd(vec![
            (Step::NbdConnect, Outcome::ok()),
            (attach.clone(), Outcome::value(json!("nbd_send_request"))),
            (
                Step::NbdRead { offset: 0 },
                Outcome::value(json!({"block": 7})),
            ),
            (Step::NbdDisconnect, Outcome::ok()),
        ]);
        assert!(result.libbpf.as_ref().unwrap().steps.is_empty());
        assert_eq!(second_opinion(&result), None);
        assert_eq!(
            libbpf_unchecked(&result).as_deref(),
            Some("libbpf ran none of the steps; step 1 (nbd_connect) and the 3 after it not compared: it changes /dev/nbd0 for the rest of the boot (a rewritten request can break the device)")
        );
        let later = nbd(vec![
            (attach, Outcome::value(json!("nbd_send_request"))),
            (Step::NbdConnect, Outcome::ok()),
        ]);
        assert_eq!(later.libbpf.as_ref().unwrap().steps.len(), 1);
        assert_eq!(second_opinion(&later), None);
        assert!(libbpf_unchecked(&later)
            .unwrap()
            .starts_with("libbpf ran step 1 only; step 2 (nbd_connect) not compared: it changes"));
    }

    #[test]
    fn the_snapshot_keeps_no_libbpf_steps() {
        let CaseOutcome::Ran(stored) = for_snapshot(CaseOutcome::Ran(tail_testmod_read())) else {
            unreachable!()
        };
        assert!(stored.libbpf.unwrap().steps.is_empty());
    }

    #[test]
    fn unsupported_is_not_a_deviation_but_a_compile_error_is() {
        let spec = case(vec![]);
        let unsupported = CaseOutcome::Unsupported {
            reason: "no bpf_testmod".into(),
        };
        assert!(deviations(&spec, "6.12", &unsupported).is_empty());
        let broken = CaseOutcome::CompileError {
            message: "x.bpf.c:3: error".into(),
        };
        assert_eq!(
            deviations(&spec, "6.12", &broken),
            vec!["compile error: x.bpf.c:3: error"]
        );
    }
}
