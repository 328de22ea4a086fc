//! Generated documentation must match the snapshots it is generated from (rust-analyzer's
//! habit: a stale generated file is rewritten, and the test fails so the change is committed).

use xtask::infra::paths::Paths;
use xtask::judge::helpers;

#[test]
fn the_helper_table_is_generated_from_the_snapshots() {
    let paths = Paths::from_env();
    let fresh = helpers::doc_from_snapshots(&paths).unwrap();
    let file = paths.root.join(helpers::DOC);
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    if committed != fresh {
        std::fs::write(&file, &fresh).unwrap();
        panic!(
            "{} was stale; it has been regenerated: review and commit it",
            file.display()
        );
    }
}
