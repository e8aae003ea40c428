#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The layer rule of the relay, checked on the source: a piece of `server/src/relay/` may use
//! only pieces of a lower row (the table in `relay/mod.rs` and docs/ARCHITECTURE.md). A new file
//! must be given a row here before this test passes.

use std::collections::BTreeSet;
use std::path::Path;

const ROWS: &[(&str, u8)] = &[
    ("config", 0),
    ("storage", 0),
    ("metrics", 0),
    ("validate", 0),
    ("errors", 1),
    ("migrations", 1),
    ("sqlite", 2),
    ("postgres", 2),
    ("openapi", 2),
    ("state", 3),
    ("auth", 4),
    ("handlers", 5),
    ("router", 6),
];

fn row(piece: &str) -> Option<u8> {
    ROWS.iter().find(|(p, _)| *p == piece).map(|(_, r)| *r)
}

/// Pieces named through `super::x` or `crate::relay::x` (also inside `{…}` groups), comments
/// excluded.
fn references(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        for prefix in ["super::", "crate::relay::"] {
            let mut rest = line;
            while let Some(at) = rest.find(prefix) {
                rest = &rest[at + prefix.len()..];
                let names: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
                    let end = group.find('}').unwrap_or(group.len());
                    group[..end]
                        .split(',')
                        .map(|i| {
                            i.trim()
                                .chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect()
                        })
                        .collect()
                } else {
                    vec![rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect()]
                };
                found.extend(names.into_iter().filter(|n| !n.is_empty()));
            }
        }
    }
    found
}

#[test]
fn lower_pieces_never_import_upper_ones() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/relay");
    let mut violations = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let piece = path.file_stem().unwrap().to_string_lossy().to_string();
        if piece == "mod" {
            continue;
        }
        seen += 1;
        let Some(own) = row(&piece) else {
            violations.push(format!("{piece}: not in the layer table"));
            continue;
        };
        let code = std::fs::read_to_string(&path).unwrap();
        // Unit tests may use anything of their own piece (`use super::*`).
        let code = code.split("#[cfg(test)]").next().unwrap();
        for r in references(code) {
            if r == piece {
                continue;
            }
            match row(&r) {
                Some(other) if other < own => {}
                Some(other) => {
                    violations.push(format!("{piece} (row {own}) imports {r} (row {other})"))
                }
                None => violations.push(format!("{piece} names unknown piece {r}")),
            }
        }
    }
    assert!(seen >= ROWS.len(), "the relay sources were not found");
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_checker_sees_imports() {
    let r = references("use super::{auth::X, state::Y};\n// use super::router;\nlet a = crate::relay::router::f();");
    assert_eq!(
        r.into_iter().collect::<Vec<_>>(),
        vec!["auth", "router", "state"]
    );
}
