//! The layer rule of amanat-core, checked on the source: a module may use only modules of a lower
//! layer (or itself). docs/ARCHITECTURE.md draws the same table; a new top-level module must be
//! given a layer here before any test passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// (module, layer). Lower layers never import upper ones.
const LAYERS: &[(&str, u8)] = &[
    ("names", 0),
    ("clock", 0),
    ("secret", 0),
    ("fsutil", 0),
    ("crypto", 1),
    ("forms", 1),
    ("store", 2),
    ("journal", 3),
    ("vault", 4),
    ("records", 5),
    ("sync", 6),
    ("hq", 7),
];

/// Files outside the rule: the crate root (declares and re-exports) and test support.
const EXEMPT: &[&str] = &["lib", "testing"];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`src/vault/lockout.rs` → `vault`).
fn owner(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every top-level module a piece of code names through `crate::…`, comments excluded
/// (`use crate::a::b`, `crate::a::f()`, `use crate::{a, b::c}`).
fn crate_references(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.insert(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.insert(name);
            }
        }
    }
    found
}

/// Top-level names that are re-exports of the crate root rather than modules.
fn root_item_module(name: &str) -> Option<&'static str> {
    match name {
        "Clock" | "SystemClock" => Some("clock"),
        "KeyProvider" | "KeyProviderError" | "SoftwareKeyProvider" | "KdfParams" => Some("crypto"),
        "Passcode" | "SecretBytes" => Some("secret"),
        "Collection" => Some("names"),
        "Record" | "RecordId" | "Store" | "StoreError" | "Tx" => Some("store"),
        "UnlockStatus" | "Vault" | "VaultError" => Some("vault"),
        _ => None,
    }
}

#[test]
fn lower_layers_never_import_upper_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "the source tree was not found");
    let mut violations = Vec::new();
    for file in &files {
        let module = owner(&src, file);
        if EXEMPT.contains(&module.as_str()) {
            continue;
        }
        let Some(own) = layer(&module) else {
            violations.push(format!(
                "{module}: not in the layer table ({})",
                file.display()
            ));
            continue;
        };
        let code = std::fs::read_to_string(file).unwrap();
        for name in crate_references(&code) {
            let target = root_item_module(&name).map(str::to_string).unwrap_or(name);
            // Test support may be used by any module's `#[cfg(test)]` code.
            if target == module || target == "testing" {
                continue;
            }
            match layer(&target) {
                Some(l) if l < own => {}
                Some(l) => violations.push(format!(
                    "{} (layer {own}) uses {target} (layer {l})",
                    file.strip_prefix(&src).unwrap().display()
                )),
                None => violations.push(format!(
                    "{} uses crate::{target}, which has no layer",
                    file.strip_prefix(&src).unwrap().display()
                )),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layer violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_every_form_of_reference() {
    let code = "use crate::vault::Vault;\nlet x = crate::records::attachments::f();\n\
                use crate::{journal::audit, store};\n// crate::comment::ignored\n";
    let found = crate_references(code);
    let expected: BTreeSet<String> = ["vault", "records", "journal", "store"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, expected);
}
