//! Compiles the cases' BPF C programs with clang (`-target bpf -O2 -g`, libbpf-dev headers).
//! A program that does not compile fails its own cases with clang's message; the rest still run.
//!
//! Objects are kept by content: beside each `<stem>.o` lie clang's dependency file (every
//! header it read) and a key over clang's version, the command line and the bytes of the
//! source and of every one of those headers. A program whose key is unchanged is not
//! compiled again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use sha2::{Digest, Sha256};
use xshell::cmd;

use crate::infra::fsutil::write_atomic;
use crate::infra::progress::Stage;
use crate::infra::runner::Runner;

/// Source path → compiled object, or clang's diagnostics.
pub type Compiled = BTreeMap<PathBuf, Result<PathBuf, String>>;

/// clang, as found on this host.
pub struct Clang<'a> {
    runner: &'a Runner,
    /// `clang --version`: a new clang compiles everything again.
    version: String,
}

impl<'a> Clang<'a> {
    pub fn new(runner: &'a Runner) -> Result<Self> {
        let sh = &runner.sh;
        let version = cmd!(sh, "clang --version").quiet().read()?;
        Ok(Self { runner, version })
    }

    /// The runner clang runs through (for the host programs that extract upstream's arrays).
    pub fn runner(&self) -> &'a Runner {
        self.runner
    }

    pub fn compile_all(&self, sources: &[PathBuf], out_dir: &Path) -> Result<Compiled> {
        self.compile_all_with(sources, out_dir, &[])
    }

    /// [`Self::compile_all`] with `includes` searched first (a kernel's generated `vmlinux.h`).
    pub fn compile_all_with(
        &self,
        sources: &[PathBuf],
        out_dir: &Path,
        includes: &[PathBuf],
    ) -> Result<Compiled> {
        let stage = Stage::start(format!("compiling {} BPF programs", sources.len()));
        std::fs::create_dir_all(out_dir)?;
        let mut compiled = Compiled::new();
        let mut reused = 0;
        for source in sources {
            let (result, fresh) = self.compile_keyed(source, out_dir, includes)?;
            reused += usize::from(!fresh);
            compiled.insert(source.clone(), result);
        }
        let failed = compiled.values().filter(|r| r.is_err()).count();
        stage.finish(format!("{reused} unchanged, {failed} failed"));
        Ok(compiled)
    }

    /// Compiles one program into `out_dir`; `includes` are searched before the source's own
    /// directory and the system's headers.
    pub fn compile(
        &self,
        source: &Path,
        out_dir: &Path,
        includes: &[PathBuf],
    ) -> Result<Result<PathBuf, String>> {
        Ok(self.compile_keyed(source, out_dir, includes)?.0)
    }

    /// The result, and whether clang ran (false: the object's key was unchanged).
    fn compile_keyed(
        &self,
        source: &Path,
        out_dir: &Path,
        includes: &[PathBuf],
    ) -> Result<(Result<PathBuf, String>, bool)> {
        let stem = source
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".c").to_owned())
            .unwrap_or_default();
        let object = out_dir.join(format!("{stem}.o"));
        let depfile = out_dir.join(format!("{stem}.o.d"));
        let keyfile = out_dir.join(format!("{stem}.o.key"));
        let own_dir = source.parent().unwrap_or(Path::new(".")).to_path_buf();
        let includes: Vec<PathBuf> = includes.iter().cloned().chain([own_dir]).collect();
        let mut args = clang_args(source, &object, &includes);
        args.extend(["-MD".into(), "-MF".into(), depfile.display().to_string()]);
        let previous = std::fs::read_to_string(&keyfile).ok();
        if object.is_file() && previous.is_some() && previous == self.key(&args, &depfile) {
            return Ok((Ok(object), false));
        }
        let _ = std::fs::remove_file(&keyfile);
        let sh = &self.runner.sh;
        let clang_args = &args;
        let output = cmd!(sh, "clang {clang_args...}")
            .quiet()
            .ignore_status()
            .output()?;
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stderr)
                .trim_end()
                .to_owned();
            return Ok((Err(message), true));
        }
        if let Some(key) = self.key(&args, &depfile) {
            // Runs at once compile into the same directory: each writes its own file.
            write_atomic(&keyfile, key.as_bytes())?;
        }
        Ok((Ok(object), true))
    }

    /// The key of a compile: clang's version, its arguments and the bytes of every file the
    /// dependency file names (the source first). `None` when a file is gone.
    fn key(&self, args: &[String], depfile: &Path) -> Option<String> {
        let deps = dependencies(&std::fs::read_to_string(depfile).ok()?);
        let mut hash = Sha256::new();
        hash.update(self.version.as_bytes());
        for arg in args {
            hash.update(arg.as_bytes());
            hash.update([0]);
        }
        for dep in deps {
            hash.update(dep.as_os_str().as_encoded_bytes());
            hash.update(std::fs::read(&dep).ok()?);
        }
        Some(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Whether a program includes `vmlinux.h`: such a program is compiled once per kernel,
/// against the header generated from that kernel's BTF ([`crate::kernel::vmlinux_h`]).
pub fn includes_vmlinux_h(source: &Path) -> bool {
    let text = std::fs::read_to_string(source).unwrap_or_default();
    text.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("#include") && line.contains("vmlinux.h")
    })
}

/// The prerequisites of a make-style dependency file (`obj.o: a.c b.h \` ...), with `\ `
/// for spaces inside a path.
pub fn dependencies(depfile: &str) -> Vec<PathBuf> {
    let joined = depfile.replace("\\\n", " ");
    let Some((_, prerequisites)) = joined.split_once(": ") else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = prerequisites.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => current.push(chars.next().unwrap_or(' ')),
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    paths.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        paths.push(PathBuf::from(current));
    }
    paths
}

/// The clang command line for one program.
pub fn clang_args(source: &Path, object: &Path, includes: &[PathBuf]) -> Vec<String> {
    // asm/types.h lives in the multiarch include directory, which -target bpf does not search.
    let multiarch = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    // As upstream's selftests Makefile: bpf_tracing.h's BPF_PROG and PT_REGS macros need the
    // target architecture; upstream's programs compare pointers of distinct types; 7.x
    // kernels embed structs unnamed (`-fms-extensions`), so their vmlinux.h does too.
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => other,
    };
    let mut args: Vec<String> = ["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"]
        .map(str::to_owned)
        .to_vec();
    args.extend([
        format!("-D__TARGET_ARCH_{arch}"),
        "-Wno-compare-distinct-pointer-types".to_owned(),
        "-fms-extensions".to_owned(),
        "-Wno-microsoft-anon-tag".to_owned(),
    ]);
    for include in includes {
        args.extend(["-I".to_owned(), include.to_string_lossy().into_owned()]);
    }
    args.extend(["-idirafter".to_owned(), multiarch]);
    args.extend(
        [
            "-c",
            &source.to_string_lossy(),
            "-o",
            &object.to_string_lossy(),
        ]
        .map(str::to_owned),
    );
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_files_list_every_prerequisite() {
        let depfile =
            "/out/x.o: /src/x.bpf.c /src/my\\ dir/h.h \\\n  /usr/include/bpf/bpf_helpers.h\n";
        assert_eq!(
            dependencies(depfile),
            [
                PathBuf::from("/src/x.bpf.c"),
                PathBuf::from("/src/my dir/h.h"),
                PathBuf::from("/usr/include/bpf/bpf_helpers.h"),
            ]
        );
        assert!(dependencies("garbage").is_empty());
    }

    #[test]
    fn programs_that_include_vmlinux_h_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        assert!(includes_vmlinux_h(&write(
            "a.bpf.c",
            "#include \"vmlinux.h\"\n"
        )));
        assert!(includes_vmlinux_h(&write(
            "b.bpf.c",
            "  #include <vmlinux.h>\n"
        )));
        assert!(!includes_vmlinux_h(&write(
            "c.bpf.c",
            "/* no vmlinux.h here */\n#include <linux/types.h>\n"
        )));
    }

    #[test]
    fn an_unchanged_program_is_not_compiled_again_and_a_changed_header_is() {
        let dir = tempfile::tempdir().unwrap();
        let (src, out) = (dir.path().join("src"), dir.path().join("out"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("value.h"), "#define VALUE 1\n").unwrap();
        let program = src.join("p.bpf.c");
        std::fs::write(
            &program,
            "#include \"value.h\"\n__attribute__((section(\"raw_tp\"), used)) int p(void *c) { return VALUE; }\n",
        )
        .unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let runner = Runner::new(dir.path()).unwrap();
        let clang = Clang::new(&runner).unwrap();

        let (first, ran) = clang.compile_keyed(&program, &out, &[]).unwrap();
        assert!(ran && first.is_ok(), "{first:?}");
        let (_, ran) = clang.compile_keyed(&program, &out, &[]).unwrap();
        assert!(!ran, "nothing changed: no compile");
        std::fs::write(src.join("value.h"), "#define VALUE 2\n").unwrap();
        let (_, ran) = clang.compile_keyed(&program, &out, &[]).unwrap();
        assert!(ran, "a header changed: compiled again");
        std::fs::remove_file(out.join("p.bpf.o")).unwrap();
        let (_, ran) = clang.compile_keyed(&program, &out, &[]).unwrap();
        assert!(ran, "the object is gone: compiled again");
    }
}
