//! FFI overhead benchmark, Rust side: the calls the Kotlin benchmark
//! (`bindings/benches/kotlin/FfiBench.kt`) makes through JNA, made here without any FFI — both
//! directly on `amanat-core` and through this crate's Rust API (which adds only the type
//! conversions). Same data: 1,000 cases, one interview with 100 text answers.
//!
//! Run: `cargo run --release -p amanat-ffi --example ffi_bench [iterations]`

use std::collections::HashMap;
use std::time::Instant;

use amanat_core::records::{cases, interviews};
use amanat_ffi::{software_key_provider, AnswerValue, ConsentScope, KdfParams, Vault};

const CASES: usize = 1000;
const ANSWERS: usize = 100;

/// A template with 100 text questions in one section, all three required languages.
fn bench_template_json() -> String {
    let text = |s: &str| format!(r#"{{"en":"{s}","ru":"{s}","uz":"{s}"}}"#);
    let questions: Vec<String> = (0..ANSWERS)
        .map(|n| {
            format!(
                r#"{{"id":"q{n}","type":"text","label":{}}}"#,
                text(&format!("Question {n}"))
            )
        })
        .collect();
    format!(
        r#"{{"id":"bench100","version":1,"languages":["en","ru","uz"],"title":{},"sections":[{{"id":"s","title":{},"questions":[{}]}}]}}"#,
        text("Bench"),
        text("Section"),
        questions.join(",")
    )
}

fn stats(name: &str, mut samples: Vec<u128>) {
    samples.sort_unstable();
    let median = samples[samples.len() / 2] as f64 / 1000.0;
    let p90 = samples[samples.len() * 9 / 10] as f64 / 1000.0;
    println!(
        "{name:<46} median {median:9.1} µs   p90 {p90:9.1} µs   (n={})",
        samples.len()
    );
}

fn time<T>(n: usize, mut f: impl FnMut() -> T) -> Vec<u128> {
    (0..n)
        .map(|_| {
            let t0 = Instant::now();
            let out = f();
            let dt = t0.elapsed().as_nanos();
            drop(out);
            dt
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let tmp = std::env::temp_dir().join(format!("amanat-bench-{}", std::process::id()));
    let provider = software_key_provider(tmp.join("device.key").to_string_lossy().into_owned());
    let fast = KdfParams {
        m_kib: 256,
        t: 1,
        p: 1,
    };
    let v = Vault::create(
        tmp.join("vault").to_string_lossy().into_owned(),
        "246810".into(),
        provider.clone(),
        fast,
    )?;
    v.install_template(bench_template_json())?;
    for _ in 0..CASES {
        v.create_case()?;
    }
    let case = v
        .list_cases()?
        .into_iter()
        .next()
        .ok_or("no case was created")?;
    v.record_consent(
        case.id.clone(),
        "bench".into(),
        "en".into(),
        vec![ConsentScope::Interview],
    )?;
    let interview = v.start_interview(case.id, "bench100".into(), 1, "en".into())?;
    let answers: HashMap<String, AnswerValue> = (0..ANSWERS)
        .map(|n| {
            (
                format!("q{n}"),
                AnswerValue::Text {
                    value: format!("Synthetic answer number {n}, about fifty characters."),
                },
            )
        })
        .collect();
    v.save_answers(interview.id.clone(), answers)?;

    // The core's own vault handle, opened on the same files, for the "no conversion" numbers.
    v.lock();
    let core = amanat_core::Vault::open(
        tmp.join("vault"),
        std::sync::Arc::new(amanat_core::SoftwareKeyProvider::new(
            tmp.join("device.key"),
        )),
    )?;
    core.unlock(&amanat_core::Passcode::from("246810"))?;

    for _ in 0..10 {
        cases::list_cases(&core)?;
        interviews::get(&core, &interview.id)?;
    }
    stats(
        "rust core   list_cases (1,000 cases)",
        time(iterations, || cases::list_cases(&core)),
    );
    stats(
        "rust core   get_interview (100 answers)",
        time(iterations * 10, || interviews::get(&core, &interview.id)),
    );
    core.lock();
    drop(core);

    v.unlock("246810".into())?;
    for _ in 0..10 {
        v.list_cases()?;
        v.get_interview(interview.id.clone())?;
    }
    stats(
        "rust ffi-api list_cases (1,000 cases)",
        time(iterations, || v.list_cases()),
    );
    stats(
        "rust ffi-api get_interview (100 answers)",
        time(iterations * 10, || v.get_interview(interview.id.clone())),
    );
    v.lock();
    drop(v);
    std::fs::remove_dir_all(&tmp)?;
    Ok(())
}
