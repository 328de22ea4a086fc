//! Kernel module loading with finit_module(2), through nix.

use std::fs::File;
use std::path::Path;

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};
use protocol::Outcome;

/// Loads the module at `path`; a module that is already loaded counts as loaded.
pub fn load(path: &Path) -> Outcome {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) => {
            return Outcome::Error {
                message: format!("opening {}: {error}", path.display()),
            }
        }
    };
    match finit_module(&file, c"", ModuleInitFlags::empty()) {
        Ok(()) | Err(Errno::EEXIST) => Outcome::ok(),
        Err(errno) => Outcome::errno(errno as i32),
    }
}
