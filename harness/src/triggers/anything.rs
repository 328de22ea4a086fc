//! Triggers for anything: a command run in the guest, a read or a write of one of the guest's
//! own files. A case fires its own tracepoint with these (a module's /proc file, a tool).
//! The host checked the paths and the command line when it read the case file
//! ([`protocol::guest_path_problem`], [`protocol::exec_problem`]); the guest checks that the
//! program is there.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protocol::{Outcome, EXEC_OUTPUT_LIMIT, EXEC_TIMEOUT_SECS, READ_FILE_LIMIT};
use serde_json::json;

use crate::program::harness_error;

/// The PATH a name in `argv[0]` is searched on when the guest's environment has none (the
/// harness runs under its own init, which sets no PATH).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs `argv`, waits (at most [`EXEC_TIMEOUT_SECS`]), and returns its status and stdout.
pub fn exec(argv: &[String]) -> Outcome {
    let Some((program, args)) = argv.split_first() else {
        return harness_error("exec: empty argv");
    };
    let path_var = std::env::var("PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let Some(path) = find_program(program, &path_var) else {
        let searched = match program.contains('/') {
            true => format!("no executable file at {program}"),
            false => format!("no executable `{program}` on the guest's PATH ({path_var})"),
        };
        return harness_error(&format!("exec: {searched}"));
    };
    let mut child = match Command::new(&path)
        .args(args)
        .env("PATH", &path_var)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => return harness_error(&format!("exec: starting {}: {error}", path.display())),
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut truncated = false;
        loop {
            match stdout.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = EXEC_OUTPUT_LIMIT.saturating_sub(kept.len());
                    truncated |= n > room;
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
        (kept, truncated)
    });
    let deadline = Instant::now() + Duration::from_secs(EXEC_TIMEOUT_SECS);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return harness_error(&format!(
                    "exec: {} did not end within {EXEC_TIMEOUT_SECS} s (killed)",
                    path.display()
                ));
            }
            Err(error) => {
                return harness_error(&format!("exec: waiting for {}: {error}", path.display()))
            }
        }
    };
    let (stdout, truncated) = reader.join().unwrap_or_default();
    let mut value = json!({
        "status": status.code(),
        "stdout": String::from_utf8_lossy(&stdout),
    });
    if truncated {
        value["truncated"] = true.into();
    }
    Outcome::value(value)
}

/// `program` itself when it is a path, else the first executable of that name on `path_var`.
fn find_program(program: &str, path_var: &str) -> Option<PathBuf> {
    let executable = |path: &Path| {
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    path_var
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|path| executable(path))
}

/// One read(2) of `len` bytes, or reads to the end (at most [`READ_FILE_LIMIT`] bytes).
pub fn read_file(path: &str, len: Option<u64>) -> Outcome {
    let mut file = match OpenOptions::new().read(true).open(path) {
        Ok(file) => file,
        Err(error) => return Outcome::from_io(&error),
    };
    let read = match len {
        Some(len) => {
            let mut buffer = vec![0u8; len as usize];
            file.read(&mut buffer).map(|n| {
                buffer.truncate(n);
                buffer
            })
        }
        None => {
            let mut buffer = Vec::new();
            file.take(READ_FILE_LIMIT as u64)
                .read_to_end(&mut buffer)
                .map(|_| buffer)
        }
    };
    match read {
        Ok(bytes) => Outcome::value(json!({
            "len": bytes.len(),
            "text": String::from_utf8_lossy(&bytes),
        })),
        Err(error) => Outcome::from_io(&error),
    }
}

/// One write(2) of `text`; the value is what the kernel took. Files are created only in /tmp
/// (the kernel's own files exist or are not there to write).
pub fn write_file(path: &str, text: &str) -> Outcome {
    let create = path.starts_with("/tmp/");
    let opened = OpenOptions::new()
        .write(true)
        .create(create)
        .truncate(create)
        .open(path);
    let mut file = match opened {
        Ok(file) => file,
        Err(error) => return Outcome::from_io(&error),
    };
    match file.write(text.as_bytes()) {
        Ok(n) => Outcome::value(n.into()),
        Err(error) => Outcome::from_io(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_gives_the_status_and_stdout() {
        let outcome = exec(&["sh".into(), "-c".into(), "echo hi; exit 3".into()]);
        assert_eq!(
            outcome,
            Outcome::value(json!({ "status": 3, "stdout": "hi\n" }))
        );
    }

    #[test]
    fn a_missing_program_is_a_harness_error_naming_it() {
        let outcome = exec(&["/no/such/tool".into()]);
        assert_eq!(
            outcome,
            harness_error("exec: no executable file at /no/such/tool")
        );
        let Outcome::Error { message } = exec(&["no-such-tool-wtp".into()]) else {
            panic!("not an error");
        };
        assert!(
            message.contains("no executable `no-such-tool-wtp` on the guest's PATH"),
            "{message}"
        );
    }

    #[test]
    fn long_output_is_cut_at_the_limit() {
        let outcome = exec(&[
            "sh".into(),
            "-c".into(),
            "head -c 10000 /dev/zero | tr '\\0' a".into(),
        ]);
        let Outcome::Ok { value: Some(value) } = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(value["stdout"].as_str().unwrap().len(), EXEC_OUTPUT_LIMIT);
        assert_eq!(value["truncated"], true);
    }

    #[test]
    fn files_are_read_and_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "hello\n").unwrap();
        let path = path.to_str().unwrap();
        assert_eq!(
            read_file(path, Some(3)),
            Outcome::value(json!({ "len": 3, "text": "hel" }))
        );
        assert_eq!(
            read_file(path, None),
            Outcome::value(json!({ "len": 6, "text": "hello\n" }))
        );
        assert_eq!(write_file(path, "bye"), Outcome::value(3.into()));
        assert_eq!(read_file("/no/such/file", None), Outcome::errno(2));
    }
}
