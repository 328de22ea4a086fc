//! The YAML that insta writes into `.snap` files, byte for byte: two-space indents, compact
//! sequences, double-quoted strings where YAML would misread them, and multi-line strings as
//! literal blocks (insta's `INSTA_YAML_BLOCK_STYLE=1`, which this project's snapshots use).
//!
//! Ported from insta 1.49's vendored yaml-rust emitter (MIT / Apache-2.0), reduced to what
//! serde values need. Emitting exactly insta's text keeps every reviewed snapshot unchanged and
//! `cargo insta review` working on the `.snap.new` files the store leaves; the unit test
//! re-emits every snapshot of the repository and requires identical bytes.

use std::fmt::Write;

use serde_norway::Value;

/// The document `---\n<value>\n`, as insta writes it.
pub fn document(value: &Value) -> String {
    let mut out = String::from("---\n");
    let mut emitter = Emitter {
        out: &mut out,
        level: -1,
    };
    emitter.node(value);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

const INDENT: isize = 2;

struct Emitter<'a> {
    out: &'a mut String,
    level: isize,
}

impl Emitter<'_> {
    fn indent(&mut self) {
        for _ in 0..(self.level.max(0) * INDENT) {
            self.out.push(' ');
        }
    }

    fn node(&mut self, node: &Value) {
        match node {
            Value::Sequence(items) => self.sequence(items),
            Value::Mapping(map) => self.mapping(map),
            Value::String(text) => self.scalar_string(text),
            Value::Bool(flag) => self.out.push_str(if *flag { "true" } else { "false" }),
            Value::Number(number) => {
                let _ = write!(self.out, "{number}");
            }
            Value::Null => self.out.push('~'),
            Value::Tagged(_) => self.node(&untagged(node)),
        }
    }

    fn scalar_string(&mut self, text: &str) {
        if needs_quotes(text) {
            quoted(self.out, text);
        } else {
            self.out.push_str(text);
        }
    }

    fn sequence(&mut self, items: &[Value]) {
        if items.is_empty() {
            self.out.push_str("[]");
            return;
        }
        self.level += 1;
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                self.out.push('\n');
                self.indent();
            }
            self.out.push('-');
            self.value(true, item);
        }
        self.level -= 1;
    }

    fn mapping(&mut self, map: &serde_norway::Mapping) {
        if map.is_empty() {
            self.out.push_str("{}");
            return;
        }
        self.level += 1;
        for (index, (key, value)) in map.iter().enumerate() {
            if index > 0 {
                self.out.push('\n');
                self.indent();
            }
            self.node(key);
            self.out.push(':');
            self.value(false, value);
        }
        self.level -= 1;
    }

    /// A value after `-` (inline) or after `key:`.
    fn value(&mut self, inline: bool, value: &Value) {
        match value {
            Value::Sequence(items) => {
                self.open_collection(inline || items.is_empty());
                self.sequence(items);
            }
            Value::Mapping(map) => {
                self.open_collection(inline || map.is_empty());
                self.mapping(map);
            }
            Value::String(text) if text.contains('\n') => self.literal_block(text),
            Value::Tagged(_) => self.value(inline, &untagged(value)),
            other => {
                self.out.push(' ');
                self.node(other);
            }
        }
    }

    fn open_collection(&mut self, same_line: bool) {
        if same_line {
            self.out.push(' ');
        } else {
            self.out.push('\n');
            self.level += 1;
            self.indent();
            self.level -= 1;
        }
    }

    fn literal_block(&mut self, text: &str) {
        let content = text.trim_end_matches('\n');
        let trailing_newlines = text.len() - content.len();
        self.out.push_str(match trailing_newlines {
            0 => " |-\n",
            1 => " |\n",
            _ => " |+\n",
        });
        let indent = ((self.level + 1) * INDENT).max(INDENT) as usize;
        for line in content.split('\n') {
            self.out.push_str(&" ".repeat(indent));
            self.out.push_str(line);
            self.out.push('\n');
        }
        for _ in 1..trailing_newlines.max(1) {
            self.out.push('\n');
        }
    }
}

/// serde_norway (like serde_yaml) writes an enum's newtype variant as a YAML tag (`!ran {...}`); insta, like
/// serde's other formats, as a one-key mapping (`ran: {...}`).
fn untagged(value: &Value) -> Value {
    match value {
        Value::Tagged(tagged) => {
            let name = tagged.tag.to_string();
            let mut map = serde_norway::Mapping::new();
            map.insert(
                Value::String(name.trim_start_matches('!').to_owned()),
                tagged.value.clone(),
            );
            Value::Mapping(map)
        }
        other => other.clone(),
    }
}

fn quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\0'..='\u{1f}' | '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether a plain scalar would be read back as something else (a number, a bool, null, an
/// indicator) or break the syntax.
fn needs_quotes(text: &str) -> bool {
    const WORDS: &[&str] = &[
        "yes", "Yes", "YES", "no", "No", "NO", "True", "TRUE", "true", "False", "FALSE", "false",
        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
    ];
    text.is_empty()
        || text.starts_with(' ')
        || text.ends_with(' ')
        || text.starts_with(['&', '*', '?', '|', '-', '<', '>', '=', '!', '%', '@', '.'])
        || text.contains(|c: char| {
            matches!(c, ':' | '{' | '}' | '[' | ']' | ',' | '#' | '`' | '"' | '\'' | '\\'
                | '\0'..='\x06' | '\t' | '\n' | '\r' | '\x0e'..='\x1a' | '\x1c'..='\x1f')
        })
        || WORDS.contains(&text)
        || text.starts_with("0x")
        || text.parse::<i64>().is_ok()
        || text.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reviewed snapshot, parsed and emitted again, gives back its exact bytes: the
    /// store writes what insta wrote. Each document alone, and the whole file as the store
    /// writes it (`Snapshot::of` the body's value with the header's description).
    #[test]
    fn every_snapshot_of_the_repository_is_emitted_byte_for_byte() {
        let root = crate::infra::paths::Paths::from_env()
            .root
            .join("tests/snapshots");
        let mut checked = 0;
        for kernel in std::fs::read_dir(&root).unwrap().flatten() {
            for file in std::fs::read_dir(kernel.path()).unwrap().flatten() {
                if file.path().extension().is_none_or(|ext| ext != "snap") {
                    continue;
                }
                let text = std::fs::read_to_string(file.path()).unwrap();
                let (header, body) = super::super::split(&text).unwrap();
                for part in [header, body] {
                    let value: Value = serde_norway::from_str(part).unwrap();
                    let emitted = document(&value);
                    assert_eq!(
                        emitted.trim_end(),
                        part.trim_end(),
                        "{}",
                        file.path().display()
                    );
                }
                let header: Value = serde_norway::from_str(header).unwrap();
                assert_eq!(
                    header["source"].as_str(),
                    Some(super::super::SOURCE),
                    "{}",
                    file.path().display()
                );
                let description = header["description"].as_str().unwrap();
                let value: Value = serde_norway::from_str(body).unwrap();
                let written = super::super::Snapshot::of(description, &value).file_text();
                assert_eq!(written, text, "{}", file.path().display());
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} snapshots found");
    }

    #[test]
    fn strings_are_quoted_where_yaml_would_misread_them() {
        for (text, quoted) in [
            ("ok", false),
            ("1024", true),
            ("0x10", true),
            ("- (not in this kernel's BTF)", true),
            ("true", true),
            ("", true),
            ("a: b", true),
            ("bind (64)", false),
        ] {
            assert_eq!(needs_quotes(text), quoted, "{text:?}");
        }
    }

    #[test]
    fn multi_line_strings_become_literal_blocks_with_their_chomping() {
        let value: Value = serde_norway::from_str("a: \"x\\ny\"\nb: \"x\\n\"\nc: 1").unwrap();
        assert_eq!(
            document(&value),
            "---\na: |-\n  x\n  y\n\nb: |\n  x\n\nc: 1\n"
        );
    }
}
