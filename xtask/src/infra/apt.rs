//! Debian packages from suites the system's apt does not use (unstable for 7.2,
//! bullseye-security for 5.10), fetched through the mirror apt is already configured with and
//! with private apt state, so the system's sources, lists and caches are never touched. The
//! mirror is read from apt's own sources, never written into the project.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::cmd;

use crate::infra::runner::Runner;

/// One `deb` entry of apt's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uri: String,
    pub suites: Vec<String>,
    pub signed_by: Option<String>,
}

const SYSTEM_SOURCE_LIST: &str = "/etc/apt/sources.list";
const SYSTEM_SOURCE_PARTS: &str = "/etc/apt/sources.list.d";

/// Parses deb822 `.sources` text (stanzas separated by blank lines).
pub fn parse_deb822(text: &str) -> Vec<AptSource> {
    text.split("\n\n")
        .filter_map(|stanza| {
            let field = |name: &str| {
                stanza.lines().find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    key.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| value.trim().to_owned())
                })
            };
            let types = field("Types")?;
            if !types.split_whitespace().any(|t| t == "deb") {
                return None;
            }
            Some(AptSource {
                uri: field("URIs")?.split_whitespace().next()?.to_owned(),
                suites: field("Suites")?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
                signed_by: field("Signed-By"),
            })
        })
        .collect()
}

/// Parses one-line `sources.list` text: `deb [options] URI SUITE COMPONENTS...`.
pub fn parse_one_line(text: &str) -> Vec<AptSource> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let rest = line.strip_prefix("deb ")?.trim();
            let (options, rest) = match rest.strip_prefix('[') {
                Some(after) => after.split_once(']')?,
                None => ("", rest),
            };
            let mut words = rest.split_whitespace();
            let uri = words.next()?.to_owned();
            let suite = words.next()?.to_owned();
            let signed_by = options
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="))
                .map(str::to_owned);
            Some(AptSource {
                uri,
                suites: vec![suite],
                signed_by,
            })
        })
        .collect()
}

/// The configured mirror that serves `suite`: the security archive for `*-security` suites,
/// the main archive otherwise.
pub fn mirror_for<'a>(sources: &'a [AptSource], suite: &str) -> Option<&'a AptSource> {
    let wants_security = suite.ends_with("-security");
    sources.iter().find(|source| {
        source.uri.contains("debian")
            && source
                .suites
                .iter()
                .any(|s| s.ends_with("-security") == wants_security)
    })
}

/// The private `.sources` file for one suite.
pub fn render_source(mirror: &AptSource, suite: &str) -> String {
    let mut text = format!(
        "Types: deb\nURIs: {}\nSuites: {suite}\nComponents: main\n",
        mirror.uri
    );
    if let Some(key) = &mirror.signed_by {
        text.push_str(&format!("Signed-By: {key}\n"));
    }
    text
}

/// Every `deb` source of the system's apt configuration.
pub fn system_sources() -> Vec<AptSource> {
    let mut sources =
        parse_one_line(&std::fs::read_to_string(SYSTEM_SOURCE_LIST).unwrap_or_default());
    let mut parts: Vec<PathBuf> = std::fs::read_dir(SYSTEM_SOURCE_PARTS)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    parts.sort();
    for part in parts {
        let text = std::fs::read_to_string(&part).unwrap_or_default();
        match part.extension().and_then(|e| e.to_str()) {
            Some("sources") => sources.extend(parse_deb822(&text)),
            Some("list") => sources.extend(parse_one_line(&text)),
            _ => {}
        }
    }
    sources
}

/// `apt-get download PACKAGE=VERSION` into `into`, from `suite` through private apt state
/// kept under `state` (lists are refreshed on every call: the suite may have moved on).
pub fn download_from_suite(
    runner: &Runner,
    state: &Path,
    suite: &str,
    package: &str,
    version: &str,
    into: &Path,
) -> Result<()> {
    let options = &suite_state(runner, state, suite)?;
    let fix = "set the manifest's version to one of these (and review the snapshots)";
    download(runner, options, package, version, into, fix)
        .with_context(|| format!("fetching from suite `{suite}`"))
}

/// The private apt state for `suite` under `state`, its lists refreshed now; the options that
/// make apt-get and apt-cache use it.
pub fn suite_state(runner: &Runner, state: &Path, suite: &str) -> Result<Vec<String>> {
    let sources = system_sources();
    let Some(mirror) = mirror_for(&sources, suite) else {
        bail!(
            "no Debian mirror in apt's sources ({SYSTEM_SOURCE_LIST}, {SYSTEM_SOURCE_PARTS}) to fetch suite `{suite}` from; \
             add a Debian entry to apt's sources"
        );
    };
    let parts = state.join("sources");
    for dir in [
        parts.clone(),
        state.join("lists/partial"),
        state.join("cache/archives/partial"),
    ] {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(
        parts.join(format!("{suite}.sources")),
        render_source(mirror, suite),
    )?;
    let options = private_state_options(state);
    let sh = &runner.sh;
    let private = &options;
    cmd!(sh, "apt-get -q {private...} update")
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| format!("apt-get update of suite `{suite}` from {}", mirror.uri))?;
    Ok(options)
}

/// The version of `package` apt would take (`apt-cache policy`'s candidate: the newest of
/// the highest priority) with `options` (empty: the system's own apt state).
pub fn candidate(runner: &Runner, options: &[String], package: &str) -> Result<String> {
    let sh = &runner.sh;
    let policy = cmd!(sh, "apt-cache {options...} policy {package}")
        .quiet()
        .read()
        .with_context(|| format!("apt-cache policy {package}"))?;
    parse_candidate(&policy).with_context(|| {
        format!("apt offers no version of {package}; apt-cache policy says:\n{policy}")
    })
}

/// The `Candidate:` line of `apt-cache policy` output, unless it is `(none)`.
pub fn parse_candidate(policy: &str) -> Option<String> {
    policy.lines().find_map(|line| {
        let version = line.trim().strip_prefix("Candidate:")?.trim();
        (!version.is_empty() && version != "(none)").then(|| version.to_owned())
    })
}

/// `apt-get [OPTIONS] download PACKAGE=VERSION` into `into`. On failure the error lists the
/// versions apt knows of the package (with the same options) and says how to `fix` it.
pub fn download(
    runner: &Runner,
    options: &[String],
    package: &str,
    version: &str,
    into: &Path,
    fix: &str,
) -> Result<()> {
    let sh = &runner.sh;
    let _dir = sh.push_dir(into);
    let spec = format!("{package}={version}");
    let output = cmd!(sh, "apt-get -q {options...} download {spec}")
        .quiet()
        .ignore_status()
        .output()?;
    if output.status.success() {
        return Ok(());
    }
    let known = cmd!(sh, "apt-cache {options...} madison {package}")
        .quiet()
        .ignore_status()
        .read()
        .unwrap_or_default();
    bail!(
        "apt-get download {spec} failed:\n{}\nversions apt knows of {package}:\n{}\nfix: {fix}",
        String::from_utf8_lossy(&output.stderr).trim(),
        if known.trim().is_empty() {
            "  (none: is the suite in apt's sources?)"
        } else {
            known.trim_end()
        }
    );
}

fn private_state_options(state: &Path) -> Vec<String> {
    let at = |p: &str| state.join(p).display().to_string();
    vec![
        "-o".into(),
        "Dir::Etc::SourceList=/dev/null".into(),
        "-o".into(),
        format!("Dir::Etc::SourceParts={}", at("sources")),
        "-o".into(),
        format!("Dir::State::Lists={}", at("lists")),
        "-o".into(),
        format!("Dir::Cache={}", at("cache")),
    ]
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const DEB822: &str = "Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main
";

    #[test]
    fn deb822_stanzas_parse_and_skip_source_entries() {
        let sources = parse_deb822(DEB822);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].uri, "http://mirror.example/debian");
        assert_eq!(sources[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            sources[1].signed_by.as_deref(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg")
        );
    }

    #[test]
    fn one_line_entries_parse_with_and_without_options() {
        let text = "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n\
                    # deb http://commented.example/debian sid main\n\
                    deb-src http://m.example/debian bookworm main\n\
                    deb http://m.example/debian-security bookworm-security main # trailing\n";
        let sources = parse_one_line(text);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].signed_by.as_deref(), Some("/k.gpg"));
        assert_eq!(sources[1].suites, ["bookworm-security"]);
    }

    #[rstest]
    #[case("sid", "http://mirror.example/debian")]
    #[case("unstable", "http://mirror.example/debian")]
    #[case("bullseye-security", "http://mirror.example/debian-security")]
    fn suites_go_to_the_matching_configured_mirror(#[case] suite: &str, #[case] uri: &str) {
        let sources = parse_deb822(DEB822);
        assert_eq!(mirror_for(&sources, suite).unwrap().uri, uri);
    }

    #[test]
    fn the_candidate_is_read_from_apt_cache_policy() {
        let policy = "linux-source-6.12:\n  Installed: (none)\n  Candidate: 6.12.118-1~deb12u1\n  \
                      Version table:\n     6.12.118-1~deb12u1 500\n        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages\n";
        assert_eq!(
            parse_candidate(policy).as_deref(),
            Some("6.12.118-1~deb12u1")
        );
        assert_eq!(
            parse_candidate("x:\n  Installed: (none)\n  Candidate: (none)\n"),
            None
        );
        assert_eq!(parse_candidate(""), None);
    }

    #[test]
    fn no_debian_mirror_means_none() {
        let sources = parse_one_line("deb https://deb.nodesource.com/node_20.x nodistro main\n");
        assert_eq!(mirror_for(&sources, "sid"), None);
    }

    #[test]
    fn the_private_source_names_one_suite_and_keeps_the_key() {
        let sources = parse_deb822(DEB822);
        let text = render_source(&sources[1], "bullseye-security");
        assert_eq!(
            text,
            "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bullseye-security\n\
             Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
    }
}
