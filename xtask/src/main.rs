//! `cargo xtask <command>`; see [`xtask::cli`].

fn main() -> std::process::ExitCode {
    xtask::cli::main()
}
