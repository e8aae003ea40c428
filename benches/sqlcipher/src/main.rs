//! The vault benchmark with a third column: SQLCipher (issue 14, item 5).
//!
//! Run: `cd benches/sqlcipher && cargo run --release` (`AMANAT_BENCH_RECORDS=N`, default 100,000).
//! Same data, same table shape, same pragmas and the same timed work as
//! `cargo bench -p amanat-core --bench vault` (shared code in `core/benches/vault_common`): plain
//! rusqlite, the sealed store (once per cipher: ChaCha20-Poly1305 and AES-256-GCM), and plain
//! rusqlite on a database keyed with `PRAGMA key` (SQLCipher with its default settings). Three
//! rounds, the order of the four sides rotated per round, `sync` before each run, medians.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../core/benches/vault_common/mod.rs"]
mod vault_common;

use std::time::Duration;
use vault_common::*;

const KEY: &str = "correct horse battery staple";

fn main() {
    let n: usize = std::env::var("AMANAT_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let data = values(n);
    let order = shuffled(n, 99);
    let mb = data.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    println!("records: {n}, payload: {mb:.1} MB, rounds: {ROUNDS} (median)");
    settings();

    // [insert, read] per side: 0 plain, 1 store (ChaCha20-Poly1305), 2 store (AES-256-GCM),
    // 3 SQLCipher.
    let mut times: [[Vec<Duration>; 2]; 4] = Default::default();
    for round in 0..ROUNDS {
        for k in 0..4 {
            let side = (round + k) % 4;
            settle();
            let tmp = tempfile::tempdir().unwrap();
            let (i, r, _) = match side {
                0 => plain_run(tmp.path(), &data, &order, None),
                1 => sealed_run(tmp.path(), &data, &order, Cipher::ChaCha20Poly1305),
                2 => sealed_run(tmp.path(), &data, &order, Cipher::Aes256Gcm),
                _ => plain_run(tmp.path(), &data, &order, Some(KEY)),
            };
            times[side][0].push(i);
            times[side][1].push(r);
        }
    }
    settle();
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("| operation | plain (rec/s) | store, ChaCha (rec/s) | store, AES (rec/s) | SQLCipher (rec/s) | ChaCha / plain | AES / plain | SQLCipher / plain | ChaCha / SQLCipher | AES / SQLCipher |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (op, name) in [(0, "insert, one transaction"), (1, "point read by id")] {
        let [p, s, a, c] = [0, 1, 2, 3].map(|side| rate(median(times[side][op].clone())));
        println!(
            "| {name} | {p:.0} | {s:.0} | {a:.0} | {c:.0} | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
            s / p,
            a / p,
            c / p,
            s / c,
            a / c
        );
    }
}

/// SQLCipher's settings as this build applies them (its defaults; nothing is changed here).
fn settings() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(tmp.path().join("probe.db")).unwrap();
    conn.pragma_update(None, "key", KEY).unwrap();
    conn.execute_batch("CREATE TABLE t (x)").unwrap();
    let get = |pragma: &str| -> String {
        conn.query_row(&format!("PRAGMA {pragma}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .unwrap_or_else(|e| format!("({e})"))
    };
    println!(
        "SQLCipher {} ({}); cipher_page_size {}, kdf_iter {}, cipher_kdf_algorithm {}, cipher_hmac_algorithm {}, cipher_use_hmac {}, cipher_plaintext_header_size {}",
        get("cipher_version"),
        get("cipher_provider"),
        get("cipher_page_size"),
        get("kdf_iter"),
        get("cipher_kdf_algorithm"),
        get("cipher_hmac_algorithm"),
        get("cipher_use_hmac"),
        get("cipher_plaintext_header_size"),
    );
}
