//! The *set* of records is authenticated, not only each value: a byte flipped in an index page of
//! the SQLite file, or a row removed behind the vault's back, must give the right answer or a typed
//! `Integrity` / `Corrupt` error — never silently fewer records (issue 10, item 5).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_core::names::files::DATABASE as DB_FILE;
use amanat_core::records::cases::{self, CaseError};
use amanat_core::records::consent::{self, ConsentError, Scope};
use amanat_core::records::interviews::{self, InterviewError};
use amanat_core::testing::PASSCODE;
use amanat_core::{Passcode, RecordId, SoftwareKeyProvider, Vault, VaultError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const CASES: usize = 40;

/// What the pristine vault holds, to compare every damaged copy against.
struct Expected {
    /// Case id → (code, has identity, number of interviews, number of consent versions).
    cases: BTreeMap<RecordId, (String, bool, usize, usize)>,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A vault with cases (half with identity fields), consent histories and interviews, closed so the
/// WAL is checkpointed into `vault.db`.
fn pristine(root: &Path) -> Expected {
    let vault = amanat_core::testing::create_vault(root).unwrap();
    let mut expected = BTreeMap::new();
    for i in 0..CASES {
        let case = cases::create_case(&vault).unwrap();
        let identity = i % 2 == 0;
        if identity {
            cases::set_identity_field(&vault, case.id, "name", &format!("Person {i}")).unwrap();
        }
        consent::record_consent(&vault, case.id, "w", "ru", &[Scope::Interview]).unwrap();
        let mut consents = 1;
        if i % 3 == 0 {
            consent::record_consent(
                &vault,
                case.id,
                "w",
                "ru",
                &[Scope::Interview, Scope::Audio],
            )
            .unwrap();
            consents += 1;
        }
        let interviews = 1 + i % 3;
        for _ in 0..interviews {
            interviews::start(&vault, case.id, "trafficking_screening", 1, "ru").unwrap();
        }
        expected.insert(
            case.id,
            (
                case.code.as_str().to_string(),
                identity,
                interviews,
                consents,
            ),
        );
    }
    drop(vault);
    Expected { cases: expected }
}

/// The SQLite pages of every index b-tree (secondary indexes, automatic primary-key indexes and
/// WITHOUT ROWID tables), found by walking each tree from its root page.
fn index_pages(db: &Path) -> Vec<(String, u32)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let roots: Vec<(String, u32)> = conn
        .prepare(
            "SELECT name, rootpage FROM sqlite_schema
             WHERE rootpage > 0 AND (type = 'index' OR sql LIKE '%WITHOUT ROWID%')",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(conn);
    let bytes = std::fs::read(db).unwrap();
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n => n as usize,
    };
    let mut out = Vec::new();
    for (name, root) in roots {
        let mut stack = vec![root];
        while let Some(page) = stack.pop() {
            if out.iter().any(|(_, p)| *p == page) {
                continue;
            }
            out.push((name.clone(), page));
            let base = (page as usize - 1) * page_size;
            let header = base + if page == 1 { 100 } else { 0 };
            if bytes[header] == 0x02 {
                let cells = u16::from_be_bytes([bytes[header + 3], bytes[header + 4]]) as usize;
                let right = u32::from_be_bytes(bytes[header + 8..header + 12].try_into().unwrap());
                stack.push(right);
                for c in 0..cells {
                    let at = header + 12 + 2 * c;
                    let cell = base + u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
                    stack.push(u32::from_be_bytes(
                        bytes[cell..cell + 4].try_into().unwrap(),
                    ));
                }
            }
        }
    }
    out
}

fn typed_damage<E: std::fmt::Debug>(e: &E) -> bool {
    let text = format!("{e:?}");
    text.contains("Integrity") || text.contains("Corrupt")
}

/// Checks one damaged copy: every answer is complete and right, or a typed damage error.
fn check_copy(dir: &Path, key: &Path, expected: &Expected) -> Result<(), String> {
    let vault = Vault::open(dir, Arc::new(SoftwareKeyProvider::new(key)))
        .map_err(|e| format!("open: {e:?}"))?;
    match vault.unlock(&Passcode::from(PASSCODE)) {
        Ok(()) => {}
        Err(VaultError::Store(e)) if typed_damage(&e) => return Ok(()),
        Err(e) => return Err(format!("unlock: untyped {e:?}")),
    }
    match cases::list_cases(&vault) {
        Ok(list) if list.len() == expected.cases.len() => {}
        Ok(list) => return Err(format!("list_cases: {} of {}", list.len(), CASES)),
        Err(e) if typed_damage(&e) => {}
        Err(e) => return Err(format!("list_cases: {e:?}")),
    }
    for (id, (code, identity, n_interviews, n_consents)) in &expected.cases {
        match cases::find_by_code(&vault, code) {
            Ok(Some(case)) if case.id == *id => {}
            Ok(Some(_)) => return Err("find_by_code: another case".into()),
            Ok(None) => return Err("find_by_code: silently not found".into()),
            Err(e @ CaseError::Store(_)) if typed_damage(&e) => {}
            Err(e) => return Err(format!("find_by_code: {e:?}")),
        }
        match cases::get_identity(&vault, *id) {
            Ok(found) if found.fields.contains_key("name") == *identity => {}
            Ok(_) => return Err("get_identity: fields silently missing".into()),
            Err(e) if typed_damage(&e) => {}
            Err(e) => return Err(format!("get_identity: {e:?}")),
        }
        match interviews::list_for_case(&vault, *id) {
            Ok(list) if list.len() == *n_interviews => {}
            Ok(list) => return Err(format!("list_for_case: {} of {n_interviews}", list.len())),
            Err(e @ (InterviewError::Store(_) | InterviewError::Case(_))) if typed_damage(&e) => {}
            Err(e) => return Err(format!("list_for_case: {e:?}")),
        }
        match consent::history(&vault, *id) {
            Ok(list) if list.len() == *n_consents => {}
            Ok(list) => return Err(format!("consent history: {} of {n_consents}", list.len())),
            Err(e @ ConsentError::Store(_)) if typed_damage(&e) => {}
            Err(e) => return Err(format!("consent history: {e:?}")),
        }
    }
    Ok(())
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn seed() -> u64 {
    std::env::var("AMANAT_FLIP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1
}

/// Flips one random byte in a random page of an index b-tree, many times (each on a fresh copy),
/// and reads everything back. Like the independent check that found the defect, but aimed at the
/// pages where a flip hides rows instead of failing authentication.
#[test]
fn byte_flips_in_index_pages_never_silently_hide_records() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pristine");
    let expected = pristine(&root);
    let key = root.join("device.key");
    let pages = index_pages(&root.join("vault").join(DB_FILE));
    let names: std::collections::BTreeSet<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    assert!(pages.len() >= 4, "{pages:?}");
    println!("index b-trees: {names:?}, {} pages", pages.len());
    let page_size = 4096;
    let seed = seed();
    println!("seed {seed} (AMANAT_FLIP_SEED to repeat)");
    let mut rng = XorShift(seed);
    let runs: usize = std::env::var("AMANAT_FLIP_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250);
    let mut failures = Vec::new();
    for run in 0..runs {
        let dir: PathBuf = tmp.path().join(format!("run{run}"));
        copy_dir(&root.join("vault"), &dir);
        let (name, page) = &pages[(rng.next() % pages.len() as u64) as usize];
        let offset = (*page as usize - 1) * page_size + (rng.next() % page_size as u64) as usize;
        let db = dir.join(DB_FILE);
        let mut bytes = std::fs::read(&db).unwrap();
        let flip = 1 + (rng.next() % 255) as u8;
        bytes[offset] ^= flip;
        std::fs::write(&db, &bytes).unwrap();
        match check_copy(&dir, &key, &expected) {
            Ok(()) => {}
            Err(what) => failures.push(format!(
                "run {run}: {name} page {page} +{} ^{flip:#04x}: {what}",
                offset % page_size
            )),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {runs} runs silently lost records:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs `sql` (with the case id as `?1`) on a copy of the pristine vault, then opens and unlocks it.
fn tampered(tmp: &Path, pristine: &Path, name: &str, sql: &str, case: RecordId) -> Vault {
    let dir = tmp.join(name);
    copy_dir(&pristine.join("vault"), &dir);
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
    let n = conn.execute(sql, [&case.as_bytes()[..]]).unwrap();
    assert!(n >= 1, "{name}: nothing removed");
    drop(conn);
    let vault = Vault::open(
        &dir,
        Arc::new(SoftwareKeyProvider::new(pristine.join("device.key"))),
    )
    .unwrap();
    vault.unlock(&Passcode::from(PASSCODE)).unwrap();
    vault
}

fn is_integrity<E: std::fmt::Debug>(r: &E) -> bool {
    format!("{r:?}").contains("Integrity")
}

/// Rows removed behind the vault's back (someone with write access to the file, or a damaged page
/// that hides them) are a typed `Integrity` error in lists and lookups, never fewer results.
#[test]
fn rows_deleted_behind_the_vaults_back_are_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pristine");
    let expected = pristine(&root);
    // A case with an identity, two consent versions and one interview (i = 0).
    let (case, (code, identity, ..)) = expected
        .cases
        .iter()
        .find(|(_, (_, identity, n, c))| *identity && *n == 1 && *c == 2)
        .unwrap();
    assert!(identity);

    // Its blind-index entry gone: not "no case with this code".
    let v = tampered(
        tmp.path(),
        &root,
        "index",
        "DELETE FROM blind_index WHERE record_id = ?1",
        *case,
    );
    let found = cases::find_by_code(&v, code);
    assert!(is_integrity(&found), "{found:?}");
    assert!(is_integrity(&v.check_integrity()));

    // Its identity record gone: not "no identity fields".
    let v = tampered(
        tmp.path(),
        &root,
        "identity",
        "DELETE FROM records WHERE id = ?1 AND rowid <> (SELECT min(rowid) FROM records WHERE id = ?1)",
        *case,
    );
    let identity = cases::get_identity(&v, *case);
    assert!(is_integrity(&identity), "{identity:?}");
    assert!(is_integrity(&v.check_integrity()));

    // The case record gone: not a shorter list.
    let v = tampered(
        tmp.path(),
        &root,
        "case",
        "DELETE FROM records WHERE id = ?1 AND rowid = (SELECT min(rowid) FROM records WHERE id = ?1)",
        *case,
    );
    let list = cases::list_cases(&v);
    assert!(is_integrity(&list), "{:?}", list.map(|l| l.len()));
    assert!(is_integrity(&v.check_integrity()));

    // Untouched, the same vault checks clean.
    let v = tampered(
        tmp.path(),
        &root,
        "untouched",
        "UPDATE records SET version = version WHERE id = ?1",
        *case,
    );
    let report = v.check_integrity().unwrap();
    assert_eq!(report.records, report.records_opened);
    assert!(report.index_entries as usize >= CASES * 3);
    assert_eq!(cases::list_cases(&v).unwrap().len(), CASES);
}
