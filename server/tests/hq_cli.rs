//! `amanat hq init`, `hq pull`, `hq add-identity` and `org export-group` through the real binary,
//! against a relay on 127.0.0.1 and field devices (core vaults) that record and sync real
//! interviews: what HQ keeps, what it decrypts, and what an operator holding one group's
//! identity cannot read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use age::secrecy::SecretString;
use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::records::attachments::{self, AttachmentInfo, AttachmentReader, AttachmentWriter};
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::{cases, interviews};
use amanat_core::sync::{self, envelope, hq as core_hq};
use amanat_core::testing::create_vault;
use amanat_core::{RecordId, Vault};
use amanat_protocol::{DeviceRole, OrgPublic};
use amanat_server::relay::{self, sqlite::SqliteStorage, RelayConfig, RunningRelay};
use amanat_server::{hq, org};
use amanat_transport::HttpTransport;
use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_amanat");
const ORG_PASS: &str = "correct horse battery staple";
const RESEARCH_PASS: &str = "the researcher's own passphrase";

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// An organisation made by the binary, a relay serving it, and passphrase files.
struct World {
    tmp: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    relay: Option<RunningRelay>,
    url: String,
    org_dir: PathBuf,
    org_pass: PathBuf,
    research_pass: PathBuf,
    http: HttpTransport,
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let org_dir = tmp.path().join("org");
        let org_pass = tmp.path().join("org-pass");
        let research_pass = tmp.path().join("research-pass");
        std::fs::write(&org_pass, format!("{ORG_PASS}\n")).unwrap();
        std::fs::write(&research_pass, format!("{RESEARCH_PASS}\n")).unwrap();
        ok(&run(&[
            "org",
            "init",
            org_dir.to_str().unwrap(),
            "--passphrase-file",
            org_pass.to_str().unwrap(),
            "--scrypt-log-n",
            "10",
        ]));
        let org = OrgPublic::from_json(&std::fs::read(org_dir.join("org.pub")).unwrap()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        std::fs::create_dir_all(tmp.path().join("relay")).unwrap();
        let storage = SqliteStorage::open(&tmp.path().join("relay")).unwrap();
        let config = RelayConfig {
            rate_per_sec: 10_000.0,
            rate_burst: 10_000.0,
            ..RelayConfig::default()
        };
        let running = rt
            .block_on(relay::start(
                "127.0.0.1:0".parse().unwrap(),
                org,
                config,
                storage,
            ))
            .unwrap();
        let url = format!("http://{}", running.addr);
        Self {
            tmp,
            rt,
            relay: Some(running),
            url,
            org_dir,
            org_pass,
            research_pass,
            http: HttpTransport::new(Duration::from_secs(20)),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn s<'a>(&self, p: &'a Path) -> &'a str {
        p.to_str().unwrap()
    }

    /// A field device enrolled with a code from the organisation's keys.
    fn device(&self, name: &str) -> Vault {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let v = create_vault(&dir).unwrap();
        let pass = SecretString::from(ORG_PASS.to_owned());
        let code = org::enroll_code(&self.org_dir, &pass, 3600, DeviceRole::Field).unwrap();
        sync::enroll(
            &v,
            &serde_json::to_string(&code).unwrap(),
            &self.url,
            &self.http,
        )
        .unwrap();
        v
    }

    /// `amanat hq init --org` holding every group.
    fn hq_from_org(&self, name: &str) -> PathBuf {
        let data = self.path(name);
        let out = ok(&run(&[
            "hq",
            "init",
            "--data",
            self.s(&data),
            "--relay",
            &self.url,
            "--org",
            self.s(&self.org_dir),
            "--passphrase-file",
            self.s(&self.org_pass),
        ]));
        assert!(
            out.contains("holds the identities of: caseworkers, law_enforcement, legal, research"),
            "{out}"
        );
        data
    }

    fn pull(&self, data: &Path, pass: &Path) -> String {
        ok(&run(&[
            "hq",
            "pull",
            "--data",
            self.s(data),
            "--passphrase-file",
            self.s(pass),
        ]))
    }

    /// `amanat org export-group GROUP --to FILE`, the file under the passphrase in `to_pass`.
    fn export_group(&self, group: &str, to: &Path, to_pass: &Path) -> Output {
        run(&[
            "org",
            "export-group",
            group,
            "--org",
            self.s(&self.org_dir),
            "--to",
            self.s(to),
            "--passphrase-file",
            self.s(&self.org_pass),
            "--to-passphrase-file",
            self.s(to_pass),
        ])
    }

    /// `amanat hq add-identity --data DATA --identity FILE` with the passphrase in `pass`.
    fn add_identity(&self, data: &Path, file: &Path, pass: &Path) -> Output {
        run(&[
            "hq",
            "add-identity",
            "--data",
            self.s(data),
            "--identity",
            self.s(file),
            "--passphrase-file",
            self.s(pass),
        ])
    }

    /// Opens an HQ installation in this process to look inside (what `hq` commands will print).
    fn open(&self, data: &Path, pass: &str) -> Vault {
        hq::open(data, &SecretString::from(pass.to_owned())).unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(r) = self.relay.take() {
            let _ = self.rt.block_on(r.stop());
        }
    }
}

fn answers() -> Answers {
    [
        ("interpreter_used", AnswerValue::YesNo(false)),
        ("first_contact", AnswerValue::Choice("messaging_app".into())),
        ("hours_per_day", AnswerValue::Integer(14)),
        // In the template's identity section (`person`): withheld by `--deidentified`.
        ("age_range", AnswerValue::Choice("25_34".into())),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect()
}

/// A case with `scopes`, one submitted interview in Uzbek, with `audio` recorded into it if
/// given; returns (case, interview id, the attachment).
fn case_with_interview(
    v: &Vault,
    scopes: &[Scope],
    audio: Option<&[u8]>,
) -> (RecordId, String, Option<AttachmentInfo>) {
    let case = cases::create_case(v).unwrap();
    consent::record_consent(v, case.id, "worker-17", "uz", scopes).unwrap();
    let i = interviews::start(v, case.id, "trafficking_screening", 1, "uz").unwrap();
    interviews::save_answers(v, &i.id, &answers()).unwrap();
    let info = audio.map(|data| {
        let mut w = AttachmentWriter::open(
            v,
            &i.id,
            "narrative_audio",
            "audio/ogg",
            attachments::DEFAULT_MAX_BYTES,
        )
        .unwrap();
        for piece in data.chunks(64 * 1024) {
            w.write(piece).unwrap();
        }
        w.finish().unwrap()
    });
    let submitted = interviews::submit(v, &i.id).unwrap();
    (case.id, submitted.id, info)
}

fn line_count(text: &str, pattern: &str) -> u64 {
    // "kept N originals: A decrypted and verified, H kept encrypted …, Q refused"
    let line = text.lines().find(|l| l.contains(pattern)).unwrap();
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    nums[0]
}

#[test]
fn hq_pull_keeps_every_original_and_decrypts_only_what_the_held_identities_allow() {
    let w = World::new();
    let a = w.device("a");
    // Case 1: consent for caseworkers and legal, not research. Case 2: research only.
    let audio: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (case1, interview1, info) = case_with_interview(
        &a,
        &[
            Scope::Interview,
            Scope::Audio,
            Scope::ShareCaseworkers,
            Scope::ShareLegal,
        ],
        Some(&audio),
    );
    let info = info.unwrap();
    let (case2, interview2, _) =
        case_with_interview(&a, &[Scope::Interview, Scope::ShareResearch], None);
    let report = sync::sync_once(&a, &w.http).unwrap();
    assert_eq!((report.interrupted.clone(), report.pending), (None, 0));
    let sent = report.pushed;
    assert!(sent >= 6, "{report:?}");

    // An installation holding every group decrypts and verifies everything sent to HQ.
    let full = w.hq_from_org("hq-full");
    let device_a = sync::enrollment(&a).unwrap().unwrap().device_id;
    let out = w.pull(&full, &w.org_pass);
    let total = line_count(&out, "applied");
    assert!(
        out.contains(&format!(
            "kept {total} originals: {total} decrypted and verified, 0 kept encrypted"
        )),
        "{out}"
    );
    {
        let v = w.open(&full, ORG_PASS);
        assert_eq!(
            interviews::get(&v, &interview1).unwrap().case_id,
            case1.to_string()
        );
        assert_eq!(
            interviews::get(&v, &interview2).unwrap().case_id,
            case2.to_string()
        );
        // The audio came down too, checked against its signed hashes; the legal key opens it.
        assert_eq!(attachments::info(&v, &info.id).unwrap(), info);
        let pass_org = SecretString::from(ORG_PASS.to_owned());
        let legal: age::x25519::Identity = {
            use age::secrecy::ExposeSecret;
            org::group_identity(&w.org_dir, &pass_org, "legal")
                .unwrap()
                .expose_secret()
                .parse()
                .unwrap()
        };
        let file = v.dir().join("attachments").join(format!("{}.age", info.id));
        let mut back = Vec::new();
        AttachmentReader::open_file(&file, &[legal])
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == audio, "the audio HQ holds is the recorded one");
        let s = core_hq::summary(&v).unwrap();
        assert!(s.audit_entries >= 4, "{s:?}"); // answer-saves and submits of both interviews
        assert_eq!((s.applied, s.originals), (total, total));
        // Every envelope device A sent, once (the installation's own audit chain stays home).
        assert_eq!(total, sent);
        // The originals are the signed ciphertext as delivered: each opens with a group identity
        // and verifies under the id it was delivered with.
        let pass = SecretString::from(ORG_PASS.to_owned());
        let ids: Vec<age::x25519::Identity> = ["caseworkers", "legal", "research"]
            .iter()
            .map(|g| {
                use age::secrecy::ExposeSecret;
                org::group_identity(&w.org_dir, &pass, g)
                    .unwrap()
                    .expose_secret()
                    .parse()
                    .unwrap()
            })
            .collect();
        let originals = core_hq::originals(&v).unwrap();
        for o in &originals {
            assert_eq!(o.sender, device_a);
            let payload = base64::engine::general_purpose::STANDARD
                .decode(&o.payload)
                .unwrap();
            let r = envelope::open_any(&payload, &ids).unwrap();
            envelope::verify(&r).unwrap();
            assert_eq!(
                (r.envelope_id.as_str(), r.author.as_str()),
                (o.envelope_id.as_str(), o.sender.as_str())
            );
            assert_eq!(o.status, core_hq::OriginalStatus::Applied);
        }
        v.lock();
    }
    // Pulling again changes nothing: nothing new, nothing kept twice.
    let again = w.pull(&full, &w.org_pass);
    assert_eq!(line_count(&again, "applied"), 0, "{again}");
    assert!(
        again.contains(&format!("kept {total} originals")),
        "{again}"
    );

    // Separation of duties: the research identity, exported under the researcher's own
    // passphrase, installed with an HQ code from `device enroll --hq`.
    let research_file = w.path("research.age");
    ok(&w.export_group("research", &research_file, &w.research_pass));
    // Never overwritten.
    let err = failed(&w.export_group("research", &research_file, &w.research_pass));
    assert!(err.contains("cannot create"), "{err}");
    let code = ok(&run(&[
        "device",
        "enroll",
        "--hq",
        "--org",
        w.s(&w.org_dir),
        "--passphrase-file",
        w.s(&w.org_pass),
        "--relay",
        &w.url,
    ]));
    let code_file = w.path("hq-code.json");
    std::fs::write(&code_file, code).unwrap();
    let research = w.path("hq-research");
    // The org passphrase does not open the researcher's file.
    let err = failed(&run(&[
        "hq",
        "init",
        "--data",
        w.s(&research),
        "--relay",
        &w.url,
        "--code-file",
        w.s(&code_file),
        "--identity",
        w.s(&research_file),
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(
        !research.join("vault").exists(),
        "nothing created, the code not spent"
    );
    let out = ok(&run(&[
        "hq",
        "init",
        "--data",
        w.s(&research),
        "--relay",
        &w.url,
        "--code-file",
        w.s(&code_file),
        "--identity",
        w.s(&research_file),
        "--passphrase-file",
        w.s(&w.research_pass),
    ]));
    assert!(out.contains("holds the identities of: research\n"), "{out}");
    let out = w.pull(&research, &w.research_pass);
    let v = w.open(&research, RESEARCH_PASS);
    let s = core_hq::summary(&v).unwrap();
    assert_eq!(s.originals, sent, "{out}");
    assert_eq!(s.applied + s.held, s.originals, "{s:?}");
    // Case 2 (research consent): case, consent, interview decrypted. Case 1, every audit entry
    // and the device's profile (caseworkers only) stay encrypted.
    assert_eq!(s.applied, 3, "{s:?}");
    assert_eq!(s.audit_entries, 0, "{s:?}");
    assert_eq!(
        interviews::get(&v, &interview2).unwrap().case_id,
        case2.to_string()
    );
    assert!(
        interviews::get(&v, &interview1).is_err(),
        "case 1 has no research consent"
    );
    assert!(cases::get_case(&v, case1).is_err());
    assert!(
        attachments::info(&v, &info.id).is_err(),
        "no research consent, no audio"
    );
    let held: Vec<_> = core_hq::originals(&v)
        .unwrap()
        .into_iter()
        .filter(|o| o.status == core_hq::OriginalStatus::Held)
        .collect();
    assert_eq!(held.len() as u64, s.held);
    assert!(out.contains(&format!("{} kept encrypted", s.held)), "{out}");
    v.lock();

    // The researcher is later also given the legal key: what was kept encrypted for legal is
    // opened now, without pulling again (the relay does not deliver it twice).
    let legal_file = w.path("legal.age");
    ok(&w.export_group("legal", &legal_file, &w.research_pass));
    let out = ok(&w.add_identity(&research, &legal_file, &w.research_pass));
    assert!(
        out.contains("holds the identities of: legal, research"),
        "{out}"
    );
    // Case 1 (legal consent): case, consent, interview, attachment metadata.
    assert!(
        out.contains("4 envelopes kept encrypted until now were opened"),
        "{out}"
    );
    let again = w.pull(&research, &w.research_pass);
    assert_eq!(line_count(&again, "applied"), 0, "{again}");
    let v = w.open(&research, RESEARCH_PASS);
    assert_eq!(
        interviews::get(&v, &interview1).unwrap().case_id,
        case1.to_string()
    );
    // Its audio came down on that pull, checked against the signed hashes.
    assert_eq!(attachments::info(&v, &info.id).unwrap(), info);
    let s2 = core_hq::summary(&v).unwrap();
    assert_eq!((s2.applied, s2.held), (s.applied + 4, s.held - 4), "{s2:?}");
    v.lock();
}

#[test]
fn hq_commands_refuse_a_wrong_passphrase_a_field_code_and_another_organisations_identity() {
    let w = World::new();
    let a = w.device("a");
    case_with_interview(&a, &[Scope::Interview, Scope::ShareCaseworkers], None);
    assert_eq!(sync::sync_once(&a, &w.http).unwrap().pending, 0);
    let full = w.hq_from_org("hq");
    // Wrong passphrase: refused, nothing pulled.
    let err = failed(&run(&[
        "hq",
        "pull",
        "--data",
        w.s(&full),
        "--passphrase-file",
        w.s(&w.research_pass),
    ]));
    assert!(err.contains("passcode"), "{err}");
    {
        let v = w.open(&full, ORG_PASS);
        assert_eq!(core_hq::summary(&v).unwrap().originals, 0);
        v.lock();
    }
    // A second init in the same directory is refused.
    let err = failed(&run(&[
        "hq",
        "init",
        "--data",
        w.s(&full),
        "--relay",
        &w.url,
        "--org",
        w.s(&w.org_dir),
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    assert!(err.contains("already holds"), "{err}");

    // A field device's code: refused before anything is created or spent.
    let code = ok(&run(&[
        "device",
        "enroll",
        "--org",
        w.s(&w.org_dir),
        "--passphrase-file",
        w.s(&w.org_pass),
        "--relay",
        &w.url,
    ]));
    let code_file = w.path("field-code.json");
    std::fs::write(&code_file, code).unwrap();
    let other = w.path("hq-other");
    let research_file = w.path("research.age");
    ok(&w.export_group("research", &research_file, &w.research_pass));
    let err = failed(&run(&[
        "hq",
        "init",
        "--data",
        w.s(&other),
        "--relay",
        &w.url,
        "--code-file",
        w.s(&code_file),
        "--identity",
        w.s(&research_file),
        "--passphrase-file",
        w.s(&w.research_pass),
    ]));
    assert!(err.contains("not an HQ code"), "{err}");
    assert!(!other.join("vault").exists());

    // Another organisation's identity is refused by `add-identity`, and stores nothing.
    let foreign_org = w.path("foreign-org");
    ok(&run(&[
        "org",
        "init",
        w.s(&foreign_org),
        "--passphrase-file",
        w.s(&w.org_pass),
        "--scrypt-log-n",
        "10",
    ]));
    let err = failed(&w.add_identity(
        &full,
        &foreign_org.join("groups").join("legal.key.age"),
        &w.org_pass,
    ));
    assert!(err.contains("not this organisation's key"), "{err}");
    // The real one is accepted (already held: replaced by the same key).
    let out = ok(&w.add_identity(
        &full,
        &w.org_dir.join("groups").join("legal.key.age"),
        &w.org_pass,
    ));
    assert!(out.contains("legal"), "{out}");
    // Unknown group name.
    let err = failed(&run(&[
        "org",
        "export-group",
        "finance",
        "--org",
        w.s(&w.org_dir),
        "--to",
        w.s(&w.path("finance.age")),
        "--passphrase-file",
        w.s(&w.org_pass),
        "--to-passphrase-file",
        w.s(&w.research_pass),
    ]));
    assert!(err.contains("unknown group"), "{err}");
    // After all that, the installation still pulls.
    let out = w.pull(&full, &w.org_pass);
    assert!(out.contains(" 0 kept encrypted"), "{out}");
    assert!(out.contains(" 0 refused"), "{out}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn verify(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["verify", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

fn findings(dir: &Path) -> Vec<(String, String)> {
    let out = verify(dir, &["--json"]);
    assert!(!out.status.success(), "tampering must fail verification");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["item"].as_str().unwrap().to_string(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn export_for_a_group_verifies_and_verify_names_every_kind_of_tampering() {
    let w = World::new();
    let a = w.device("a");
    let audio: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let (_, v0, info) = case_with_interview(
        &a,
        &[
            Scope::Interview,
            Scope::Audio,
            Scope::ShareCaseworkers,
            Scope::ShareLegal,
        ],
        Some(&audio),
    );
    let info = info.unwrap();
    // An amendment: hours per day corrected.
    let draft = interviews::amend(&a, &v0).unwrap();
    let mut fix = Answers::new();
    fix.insert("hours_per_day", AnswerValue::Integer(10));
    interviews::save_answers(&a, &draft.id, &fix).unwrap();
    let v1 = interviews::submit(&a, &draft.id).unwrap().id;
    let (_, research_only, _) =
        case_with_interview(&a, &[Scope::Interview, Scope::ShareResearch], None);
    assert_eq!(sync::sync_once(&a, &w.http).unwrap().pending, 0);
    let hq = w.hq_from_org("hq");
    w.pull(&hq, &w.org_pass);

    let exp = w.path("export-legal");
    let export = |group: &str, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "export",
            "--data",
            w.s(&hq),
            "--group",
            group,
            "--out",
            out.to_str().unwrap(),
            "--passphrase-file",
            w.s(&w.org_pass),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let out = ok(&export("legal", &exp, &[]));
    assert!(
        out.contains("2 interview versions, 1 attachments, 1 cases"),
        "{out}"
    );
    assert!(
        out.contains("1 versions held here were not exported"),
        "{out}"
    );
    assert!(exp.join("interviews").join(format!("{v0}.json")).exists());
    assert!(exp.join("interviews").join(format!("{v1}.json")).exists());
    assert!(!exp
        .join("interviews")
        .join(format!("{research_only}.json"))
        .exists());
    let back = std::fs::read(exp.join("attachments").join(format!("{}.ogg", info.id))).unwrap();
    assert!(back == audio, "the decrypted audio is the recording");
    let readable: serde_json::Value = serde_json::from_slice(
        &std::fs::read(exp.join("interviews").join(format!("{v0}.json"))).unwrap(),
    )
    .unwrap();
    // Labels in the interview's language (Uzbek), not ids only.
    let labels: Vec<&str> = readable["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["label"].as_str().unwrap())
        .collect();
    assert!(labels.iter().all(|l| !l.is_empty()), "{labels:?}");
    assert_eq!(readable["language"], "uz");
    let csv = std::fs::read_to_string(exp.join("summary.csv")).unwrap();
    assert!(csv.starts_with("interview_id,case_code,"), "{csv}");
    assert!(csv.lines().next().unwrap().ends_with(",verified"));
    assert_eq!(
        csv.lines().filter(|l| l.ends_with(",true")).count(),
        2,
        "{csv}"
    );
    // Never into a directory that holds something.
    let err = failed(&export("legal", &exp, &[]));
    assert!(err.contains("not empty"), "{err}");

    // The untouched export verifies, with a report a lawyer reads.
    let out = verify(&exp, &["--org-pub", w.s(&w.org_dir.join("org.pub"))]);
    let report = ok(&out);
    assert_eq!(report.matches("VERIFIED").count(), 2, "{report}");
    assert!(report.contains("consent recorded by worker-17"), "{report}");
    assert!(report.contains("amendment 1 of version"), "{report}");
    assert!(report.contains("changed: hours_per_day"), "{report}");
    assert!(
        report.contains("RESULT: every signature, hash and chain holds"),
        "{report}"
    );

    // De-identified: the identity section's answer is not in the files at all.
    let deid = w.path("export-deid");
    ok(&export("legal", &deid, &["--deidentified"]));
    ok(&verify(&deid, &[]));
    let text = std::fs::read_to_string(deid.join("interviews").join(format!("{v0}.json"))).unwrap();
    assert!(
        !text.contains("age_range") && !text.contains("25_34"),
        "{text}"
    );
    assert!(text.contains("\"withheld_identity_answers\": 1"), "{text}");
    // Research: only the case consented to research; the legal case is not in it.
    let research = w.path("export-research");
    let out = ok(&export("research", &research, &[]));
    assert!(
        out.contains("1 interview versions, 0 attachments, 1 cases"),
        "{out}"
    );
    ok(&verify(&research, &[]));
    // A future --since exports nothing.
    let later = w.path("export-later");
    let out = ok(&export("legal", &later, &["--since", "2999-01-01"]));
    assert!(out.contains("0 interview versions"), "{out}");

    let tampered = |name: &str, edit: &dyn Fn(&Path)| {
        let dir = w.path(name);
        copy_dir(&exp, &dir);
        edit(&dir);
        findings(&dir)
    };
    let v0_file = format!("interviews/{v0}.json");
    let v1_file = format!("interviews/{v1}.json");
    // A changed answer.
    let f = tampered("t-answer", &|d| {
        let p = d.join(&v0_file);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"value\": 14"), "{text}");
        std::fs::write(&p, text.replace("\"value\": 14", "\"value\": 4")).unwrap();
    });
    assert!(
        f.contains(&(
            v0_file.clone(),
            "answer to hours_per_day differs from the signed one".into()
        )),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|(i, r)| *i == v0_file && r.contains("changed since export")),
        "{f:?}"
    );
    // A swapped attachment.
    let att_file = format!("attachments/{}.ogg", info.id);
    let f = tampered("t-attachment", &|d| {
        std::fs::write(d.join(&att_file), b"another recording").unwrap();
    });
    assert!(
        f.iter()
            .any(|(i, r)| *i == att_file && r.contains("not the recorded one")),
        "{f:?}"
    );
    // A removed version.
    let f = tampered("t-removed", &|d| {
        std::fs::remove_file(d.join(&v0_file)).unwrap();
    });
    assert!(
        f.iter()
            .any(|(i, r)| *i == v1_file && r.contains("is missing")),
        "{f:?}"
    );
    assert!(
        f.iter().any(|(i, r)| *i == v0_file && r == "missing"),
        "{f:?}"
    );
    // A version presented out of order (its amendment number changed).
    let f = tampered("t-reordered", &|d| {
        let p = d.join(&v1_file);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace("\"amendment\": 1", "\"amendment\": 0")).unwrap();
    });
    assert!(
        f.iter()
            .any(|(i, r)| *i == v1_file && r.contains("differs from the signed record")),
        "{f:?}"
    );
    // A forged device signature.
    let record = readable["record"].as_str().unwrap().to_string();
    let record_file = format!("records/{record}.json");
    let f = tampered("t-signature", &|d| {
        let p = d.join(&record_file);
        let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let sig = r["signature"].as_str().unwrap().to_string();
        let flipped = format!(
            "{}{}",
            if sig.starts_with('0') { "1" } else { "0" },
            &sig[1..]
        );
        r["signature"] = flipped.into();
        std::fs::write(&p, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    });
    assert!(
        f.iter()
            .any(|(i, r)| *i == record_file && r.contains("signature does not hold")),
        "{f:?}"
    );
    // The answer changed and the manifest's hash of the file rewritten to match: the manifest's
    // signature no longer holds.
    let f = tampered("t-manifest", &|d| {
        let p = d.join(&v0_file);
        let text = std::fs::read_to_string(&p).unwrap();
        let changed = text.replace("\"value\": 14", "\"value\": 4");
        std::fs::write(&p, &changed).unwrap();
        let mp = d.join("manifest.json");
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&mp).unwrap()).unwrap();
        for file in m["files"].as_array_mut().unwrap() {
            if file["path"] == v0_file.as_str() {
                file["sha256"] = amanat_protocol::sha256_hex(changed.as_bytes()).into();
            }
        }
        std::fs::write(&mp, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    });
    assert!(
        f.contains(&(
            "manifest.json".into(),
            "the manifest's signature does not hold".into()
        )),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|(i, r)| *i == v0_file && r.contains("answer to hours_per_day differs")),
        "{f:?}"
    );
    assert!(
        !f.iter().any(|(_, r)| r.contains("changed since export")),
        "{f:?}"
    );
    // Not an export at all.
    let err = failed(&verify(&w.org_dir, &[]));
    assert!(err.contains("not an Amanat export"), "{err}");
    // A file slipped in.
    let f = tampered("t-extra", &|d| {
        std::fs::write(d.join("interviews").join("note.json"), b"{}").unwrap();
    });
    assert!(
        f.iter()
            .any(|(i, r)| i == "interviews/note.json" && r.contains("not in the manifest")),
        "{f:?}"
    );

    // Re-signed by another organisation: its own certified installation signs a manifest that
    // claims its organisation. Self-consistent — so verify says whose it is, and refuses it
    // against the expected organisation.
    let other_org = w.path("other-org");
    ok(&run(&[
        "org",
        "init",
        w.s(&other_org),
        "--passphrase-file",
        w.s(&w.org_pass),
        "--scrypt-log-n",
        "10",
    ]));
    let key_pkcs8 = amanat_protocol::generate_ed25519_pkcs8().unwrap();
    let key = amanat_protocol::ed25519_from_pkcs8(&key_pkcs8).unwrap();
    use ring::signature::KeyPair;
    let key_hex = amanat_protocol::to_hex(key.public_key().as_ref());
    let cert = ok(&run(&[
        "org",
        "certify-hq",
        "--org",
        w.s(&other_org),
        "--key",
        &key_hex,
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    let resigned = w.path("t-resigned");
    copy_dir(&exp, &resigned);
    let mut m: amanat_core::hq::format::Manifest =
        serde_json::from_slice(&std::fs::read(resigned.join("manifest.json")).unwrap()).unwrap();
    m.organisation =
        OrgPublic::from_json(&std::fs::read(other_org.join("org.pub")).unwrap()).unwrap();
    m.hq = serde_json::from_str(cert.trim()).unwrap();
    m.signature = amanat_protocol::to_hex(
        key.sign(&amanat_core::hq::format::manifest_signed_bytes(&m).unwrap())
            .as_ref(),
    );
    std::fs::write(
        resigned.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    let claims = ok(&verify(&resigned, &[]));
    assert!(
        claims.contains(&format!("organisation {}", m.organisation.fingerprint)),
        "{claims}"
    );
    let out = verify(&resigned, &["--org-pub", w.s(&w.org_dir.join("org.pub"))]);
    let err = failed(&out);
    assert!(err.contains("manifest"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("not the expected"));
    // Without a certificate an installation cannot export at all.
    let code = ok(&run(&[
        "device",
        "enroll",
        "--hq",
        "--no-qr",
        "--org",
        w.s(&w.org_dir),
        "--passphrase-file",
        w.s(&w.org_pass),
        "--relay",
        &w.url,
    ]));
    let code_file = w.path("hq2-code.json");
    std::fs::write(&code_file, code).unwrap();
    let legal_file = w.path("legal.age");
    ok(&w.export_group("legal", &legal_file, &w.research_pass));
    let hq2 = w.path("hq2");
    let out = ok(&run(&[
        "hq",
        "init",
        "--data",
        w.s(&hq2),
        "--relay",
        &w.url,
        "--code-file",
        w.s(&code_file),
        "--identity",
        w.s(&legal_file),
        "--passphrase-file",
        w.s(&w.research_pass),
    ]));
    let key2 = out
        .lines()
        .find_map(|l| l.strip_prefix("signing key "))
        .unwrap()
        .to_string();
    w.pull(&hq2, &w.research_pass);
    let out2 = w.path("export-hq2");
    let err = failed(&run(&[
        "export",
        "--data",
        w.s(&hq2),
        "--group",
        "legal",
        "--out",
        w.s(&out2),
        "--passphrase-file",
        w.s(&w.research_pass),
    ]));
    assert!(err.contains("certify-hq"), "{err}");
    assert!(!out2.join("manifest.json").exists());
    // Another organisation's certificate is refused; this organisation's is stored.
    let cert_file = w.path("hq2-cert.json");
    let other_cert = ok(&run(&[
        "org",
        "certify-hq",
        "--org",
        w.s(&other_org),
        "--key",
        &key2,
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    std::fs::write(&cert_file, other_cert).unwrap();
    let err = failed(&run(&[
        "hq",
        "certify",
        "--data",
        w.s(&hq2),
        "--certificate",
        w.s(&cert_file),
        "--passphrase-file",
        w.s(&w.research_pass),
    ]));
    assert!(err.contains("not signed by this organisation"), "{err}");
    let good = ok(&run(&[
        "org",
        "certify-hq",
        "--org",
        w.s(&w.org_dir),
        "--key",
        &key2,
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    std::fs::write(&cert_file, good).unwrap();
    ok(&run(&[
        "hq",
        "certify",
        "--data",
        w.s(&hq2),
        "--certificate",
        w.s(&cert_file),
        "--passphrase-file",
        w.s(&w.research_pass),
    ]));
    ok(&run(&[
        "export",
        "--data",
        w.s(&hq2),
        "--group",
        "legal",
        "--out",
        w.s(&out2),
        "--passphrase-file",
        w.s(&w.research_pass),
    ]));
    ok(&verify(
        &out2,
        &["--org-pub", w.s(&w.org_dir.join("org.pub"))],
    ));
    // A group it does not hold, or that does not exist: refused.
    for group in ["research", "finance"] {
        let err = failed(&run(&[
            "export",
            "--data",
            w.s(&hq2),
            "--group",
            group,
            "--out",
            w.s(&w.path(&format!("export-hq2-{group}"))),
            "--passphrase-file",
            w.s(&w.research_pass),
        ]));
        assert!(err.contains("does not hold that group"), "{group}: {err}");
    }
    let err = failed(&run(&[
        "export",
        "--data",
        w.s(&hq2),
        "--group",
        "legal",
        "--out",
        w.s(&w.path("export-bad-since")),
        "--since",
        "last week",
        "--passphrase-file",
        w.s(&w.research_pass),
    ]));
    assert!(err.contains("--since"), "{err}");
}

/// The built-in screening template as version 2, with a corrected Uzbek wording of one question.
fn screening_v2(uz_label: &str) -> String {
    let mut t: serde_json::Value =
        serde_json::from_str(include_str!("../../core/src/forms/screening.json")).unwrap();
    t["version"] = 2.into();
    for s in t["sections"].as_array_mut().unwrap() {
        for q in s["questions"].as_array_mut().unwrap() {
            if q["id"] == "hours_per_day" {
                q["label"]["uz"] = uz_label.into();
            }
        }
    }
    serde_json::to_string_pretty(&t).unwrap()
}

fn uz_label(v: &Vault, version: u32) -> String {
    let t = interviews::template(v, "trafficking_screening", version).unwrap();
    let l = t.localized("uz").unwrap();
    l.sections
        .iter()
        .flat_map(|s| s.questions.iter())
        .find(|q| q.id == "hours_per_day")
        .unwrap()
        .label
        .clone()
}

/// A request signed by a bare key, straight to the relay (what a holder of an HQ enrollment can
/// send outside any installation's checks).
fn raw(
    w: &World,
    key: &ring::signature::Ed25519KeyPair,
    path: &str,
    body: Vec<u8>,
) -> amanat_core::sync::Response {
    use amanat_core::sync::Transport;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let h = amanat_protocol::sign_request(key, "POST", path, now, &body).unwrap();
    let mut headers: Vec<(String, String)> = h
        .pairs()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    headers.push(("content-type".into(), "application/json".into()));
    w.http
        .send(&amanat_core::sync::Request {
            method: "POST".into(),
            base_url: w.url.clone(),
            path: path.into(),
            headers,
            body,
        })
        .unwrap()
}

/// A fresh key enrolled at the relay with an `hq` code: it may push to any device, and holds no
/// organisation certificate.
fn bare_hq(w: &World) -> ring::signature::Ed25519KeyPair {
    use ring::signature::KeyPair;
    let key =
        amanat_protocol::ed25519_from_pkcs8(&amanat_protocol::generate_ed25519_pkcs8().unwrap())
            .unwrap();
    let pass = SecretString::from(ORG_PASS.to_owned());
    let code = org::enroll_code(&w.org_dir, &pass, 600, DeviceRole::Hq).unwrap();
    let body = serde_json::to_vec(&amanat_protocol::EnrollRequest {
        code,
        signing_public_key: amanat_protocol::to_hex(key.public_key().as_ref()),
        age_recipient: age::x25519::Identity::generate().to_public().to_string(),
    })
    .unwrap();
    assert_eq!(raw(w, &key, "/v1/enroll", body).status, 200);
    key
}

/// Pushes `payload` to `device` as envelope number `n`, signed by `key`.
fn push_raw(
    w: &World,
    key: &ring::signature::Ed25519KeyPair,
    device: &str,
    payload: String,
    n: u8,
) {
    let body = serde_json::to_vec(&amanat_protocol::PushRequest {
        envelopes: vec![amanat_protocol::Envelope {
            id: format!("0192f1c4-8a2b-7c3d-9e4f-0000000000{n:02x}"),
            recipients: vec![device.to_string()],
            payload,
        }],
    })
    .unwrap();
    let resp = raw(w, key, "/v1/envelopes", body);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
}

#[test]
fn a_published_template_reaches_devices_signed_and_forged_or_bad_orders_change_nothing() {
    let w = World::new();
    let a = w.device("a");
    // An interview in progress on version 1.
    let case = cases::create_case(&a).unwrap();
    consent::record_consent(&a, case.id, "worker-17", "uz", &[Scope::Interview]).unwrap();
    let draft = interviews::start(&a, case.id, "trafficking_screening", 1, "uz").unwrap();
    assert_eq!(sync::sync_once(&a, &w.http).unwrap().pending, 0);
    let hq = w.hq_from_org("hq");
    w.pull(&hq, &w.org_pass);
    let device_a = sync::enrollment(&a).unwrap().unwrap().device_id;

    let v2 = w.path("screening-v2.json");
    std::fs::write(&v2, screening_v2("Odatdagi kunda necha soat ishlardingiz?")).unwrap();
    let out = ok(&run(&[
        "template",
        "publish",
        w.s(&v2),
        "--org",
        w.s(&w.org_dir),
        "--data",
        w.s(&hq),
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    assert!(
        out.contains("template trafficking_screening version 2 signed and sent to 1 devices"),
        "{out}"
    );
    assert!(interviews::template(&a, "trafficking_screening", 2).is_err());
    let r = sync::sync_once(&a, &w.http).unwrap();
    assert_eq!(r.quarantined, 0, "{r:?}");
    assert_eq!(uz_label(&a, 2), "Odatdagi kunda necha soat ishlardingiz?");
    assert_eq!(sync::orders::obeyed(&a).unwrap().len(), 1);
    // The interview in progress keeps version 1 and its wording; new ones can use version 2.
    assert_eq!(
        uz_label(&a, 1),
        "Oddiy kunda taxminan necha soat ishlagansiz?"
    );
    let mut more = Answers::new();
    more.insert("hours_per_day", AnswerValue::Integer(9));
    let saved = interviews::save_answers(&a, &draft.id, &more).unwrap();
    assert_eq!(saved.template_version, 1);
    let fresh = interviews::start(&a, case.id, "trafficking_screening", 2, "uz").unwrap();
    assert_eq!(fresh.template_version, 2);
    // HQ installed it too (to label exports).
    {
        let v = w.open(&hq, ORG_PASS);
        assert_eq!(uz_label(&v, 2), "Odatdagi kunda necha soat ishlardingiz?");
        v.lock();
    }

    // HQ itself refuses to send an order another organisation signed.
    let other_org = w.path("other-org");
    ok(&run(&[
        "org",
        "init",
        w.s(&other_org),
        "--passphrase-file",
        w.s(&w.org_pass),
        "--scrypt-log-n",
        "10",
    ]));
    let v3 = w.path("screening-v3.json");
    std::fs::write(
        &v3,
        screening_v2("soxta").replace("\"version\": 2", "\"version\": 3"),
    )
    .unwrap();
    let err = failed(&run(&[
        "template",
        "publish",
        w.s(&v3),
        "--org",
        w.s(&other_org),
        "--data",
        w.s(&hq),
        "--passphrase-file",
        w.s(&w.org_pass),
        "--hq-passphrase-file",
        w.s(&w.org_pass),
    ]));
    assert!(err.contains("not signed by this organisation"), "{err}");

    // Whoever can push to the device (a bare HQ enrollment) gets nothing obeyed without the
    // organisation's signature, or with it on something the device must refuse.
    let key = bare_hq(&w);
    let pass = SecretString::from(ORG_PASS.to_owned());
    let ours = |kind: &str, body: String| {
        amanat_core::sync::orders::payload(&org::order(&w.org_dir, &pass, kind, body).unwrap())
            .unwrap()
    };
    let theirs = amanat_core::sync::orders::payload(
        &org::order(
            &other_org,
            &pass,
            "template",
            std::fs::read_to_string(&v3).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let mut unsigned: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(ours("template", std::fs::read_to_string(&v3).unwrap()))
            .unwrap()[b"AMANAT-ORDER-V1\n".len()..],
    )
    .unwrap();
    unsigned["signature"] = "00".repeat(64).into();
    let unsigned = base64::engine::general_purpose::STANDARD.encode(
        [
            b"AMANAT-ORDER-V1\n".as_slice(),
            &serde_json::to_vec(&unsigned).unwrap(),
        ]
        .concat(),
    );
    let malformed = base64::engine::general_purpose::STANDARD.encode(b"AMANAT-ORDER-V1\n{not json");
    push_raw(&w, &key, &device_a, theirs, 1);
    push_raw(&w, &key, &device_a, unsigned, 2);
    push_raw(&w, &key, &device_a, malformed, 3);
    push_raw(&w, &key, &device_a, ours("wipe_everything", "{}".into()), 4);
    push_raw(
        &w,
        &key,
        &device_a,
        ours("template", screening_v2("boshqa matn")),
        5,
    );
    push_raw(
        &w,
        &key,
        &device_a,
        ours("template", "{\"id\": 1}".into()),
        6,
    );
    push_raw(
        &w,
        &key,
        &device_a,
        ours("retention", "{\"days\": 0}".into()),
        7,
    );
    let r = sync::sync_once(&a, &w.http).unwrap();
    assert_eq!(r.quarantined, 7, "{r:?}");
    let mut reasons: Vec<String> = sync::quarantined(&a)
        .unwrap()
        .into_iter()
        .map(|q| q.reason)
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "bad_order_signature",
            "bad_order_signature",
            "conflicting_template",
            "invalid_retention",
            "invalid_template",
            "malformed_order",
            "unknown_order"
        ]
    );
    // Nothing changed: version 2 keeps the published wording, no version 3, one order obeyed.
    assert_eq!(uz_label(&a, 2), "Odatdagi kunda necha soat ishlardingiz?");
    assert!(interviews::template(&a, "trafficking_screening", 3).is_err());
    assert_eq!(sync::orders::obeyed(&a).unwrap().len(), 1);
}

fn submitted(v: &Vault, case: RecordId, audio: Option<&[u8]>) -> (String, Option<AttachmentInfo>) {
    let i = interviews::start(v, case, "trafficking_screening", 1, "uz").unwrap();
    interviews::save_answers(v, &i.id, &answers()).unwrap();
    let info = audio.map(|data| {
        let mut w = AttachmentWriter::open(
            v,
            &i.id,
            "narrative_audio",
            "audio/ogg",
            attachments::DEFAULT_MAX_BYTES,
        )
        .unwrap();
        w.write(data).unwrap();
        w.finish().unwrap()
    });
    (interviews::submit(v, &i.id).unwrap().id, info)
}

#[test]
fn receipts_and_retention_purge_only_acknowledged_submitted_records_after_the_period() {
    let w = World::new();
    let a = w.device("a");
    let case = cases::create_case(&a).unwrap();
    consent::record_consent(
        &a,
        case.id,
        "worker-17",
        "uz",
        &[Scope::Interview, Scope::Audio, Scope::ShareCaseworkers],
    )
    .unwrap();
    let audio: Vec<u8> = (0..50_000u32).map(|i| (i % 241) as u8).collect();
    let (i1, info) = submitted(&a, case.id, Some(&audio));
    let info = info.unwrap();
    let (i2, _) = submitted(&a, case.id, None);
    let amending = interviews::amend(&a, &i2).unwrap(); // a correction in progress keeps i2
    let draft = interviews::start(&a, case.id, "trafficking_screening", 1, "uz").unwrap();
    assert_eq!(sync::sync_once(&a, &w.http).unwrap().pending, 0);
    let hq = w.hq_from_org("hq");
    w.pull(&hq, &w.org_pass);
    let out = ok(&run(&[
        "hq",
        "retention",
        "--days",
        "30",
        "--org",
        w.s(&w.org_dir),
        "--data",
        w.s(&hq),
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    assert!(
        out.contains("retention of 30 days signed and sent to 1 devices"),
        "{out}"
    );
    let out = ok(&run(&[
        "hq",
        "ack",
        "--data",
        w.s(&hq),
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    // i1, i2 and the audio (checked at HQ).
    assert!(out.contains("acknowledged 3 records"), "{out}");
    let again = ok(&run(&[
        "hq",
        "ack",
        "--data",
        w.s(&hq),
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    assert!(again.contains("acknowledged 0 records"), "{again}");
    // Submitted after the receipt: never acknowledged.
    let (i3, _) = submitted(&a, case.id, None);
    let r = sync::sync_once(&a, &w.http).unwrap();
    assert_eq!(r.quarantined, 0, "{r:?}");
    assert_eq!(sync::retention::acknowledged(&a).unwrap(), 3);
    // Within the period nothing goes (the sync ran the purge with the real clock).
    for id in [&i1, &i2, &i3, &amending.id, &draft.id] {
        interviews::get(&a, id).unwrap();
    }
    let now = a.clock().now_ms();
    let day = 86_400_000;
    let none = sync::retention::purge_due(&a, now + 29 * day).unwrap();
    assert_eq!(none, sync::retention::PurgeReport::default());
    // After it: the acknowledged version nobody amends, and its audio — nothing else.
    let gone = sync::retention::purge_due(&a, now + 31 * day).unwrap();
    assert_eq!((gone.interviews, gone.attachments), (1, 1), "{gone:?}");
    assert!(interviews::get(&a, &i1).is_err());
    assert!(attachments::info(&a, &info.id).is_err());
    assert!(!a
        .dir()
        .join("attachments")
        .join(format!("{}.age", info.id))
        .exists());
    for id in [&i2, &i3, &amending.id, &draft.id] {
        interviews::get(&a, id).unwrap();
    }
    let tombstones = sync::retention::purged(&a).unwrap();
    assert_eq!(tombstones.len(), 2);
    assert!(tombstones
        .iter()
        .any(|(id, t)| *id == i1 && t.kind == "interview" && t.hash.is_some()));
    // Custody still holds on what remains.
    assert!(sync::verify_custody(&a).unwrap().is_clean());
    // Once the correction is submitted and acknowledged too, both versions go together.
    let mut fix = Answers::new();
    fix.insert("hours_per_day", AnswerValue::Integer(11));
    interviews::save_answers(&a, &amending.id, &fix).unwrap();
    let i2b = interviews::submit(&a, &amending.id).unwrap().id;
    sync::sync_once(&a, &w.http).unwrap();
    w.pull(&hq, &w.org_pass);
    let out = ok(&run(&[
        "hq",
        "ack",
        "--data",
        w.s(&hq),
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    assert!(out.contains("acknowledged 2 records"), "{out}"); // i3 and the correction
    sync::sync_once(&a, &w.http).unwrap();
    let now = a.clock().now_ms();
    let gone = sync::retention::purge_due(&a, now + 31 * day).unwrap();
    assert_eq!(gone.interviews, 3, "i2, its correction and i3: {gone:?}");
    assert!(interviews::get(&a, &i2b).is_err());
    interviews::get(&a, &draft.id).unwrap(); // drafts never
    assert!(sync::verify_custody(&a).unwrap().is_clean());

    // Forged or misdirected receipts acknowledge nothing.
    let device_a = sync::enrollment(&a).unwrap().unwrap().device_id;
    let (i4, _) = submitted(&a, case.id, None);
    sync::sync_once(&a, &w.http).unwrap();
    // A key enrolled at the relay as an HQ installation, so it can push.
    let key = bare_hq(&w);
    let key_hex = {
        use ring::signature::KeyPair;
        amanat_protocol::to_hex(key.public_key().as_ref())
    };
    let other_org = w.path("other-org");
    ok(&run(&[
        "org",
        "init",
        w.s(&other_org),
        "--passphrase-file",
        w.s(&w.org_pass),
        "--scrypt-log-n",
        "10",
    ]));
    let cert = |org_dir: &Path| -> amanat_protocol::HqCertificate {
        serde_json::from_str(
            ok(&run(&[
                "org",
                "certify-hq",
                "--org",
                w.s(org_dir),
                "--key",
                &key_hex,
                "--passphrase-file",
                w.s(&w.org_pass),
            ]))
            .trim(),
        )
        .unwrap()
    };
    let entry = |hash: &str| amanat_protocol::ReceiptEntry {
        kind: "interview".into(),
        record_id: i4.clone(),
        hash: hash.into(),
    };
    let receipt = |cert: amanat_protocol::HqCertificate, device: &str, hash: &str| {
        amanat_core::sync::retention::payload(&amanat_protocol::Receipt::issue(
            &key,
            cert,
            device,
            1,
            vec![entry(hash)],
        ))
        .unwrap()
    };
    let ours = cert(&w.org_dir);
    let theirs = cert(&other_org);
    let real_hash = "0".repeat(64); // not the content hash: a receipt for another version
    push_raw(
        &w,
        &key,
        &device_a,
        receipt(theirs, &device_a, &real_hash),
        0x21,
    );
    push_raw(
        &w,
        &key,
        &device_a,
        receipt(ours.clone(), "00000000000000000000000000000000", &real_hash),
        0x22,
    );
    push_raw(
        &w,
        &key,
        &device_a,
        receipt(ours, &device_a, &real_hash),
        0x23,
    );
    let mut tampered: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(receipt(cert(&w.org_dir), &device_a, &real_hash))
            .unwrap()[b"AMANAT-RECEIPT-V1\n".len()..],
    )
    .unwrap();
    tampered["entries"][0]["record_id"] = "ffffffffffffffffffffffffffffffff".into();
    push_raw(
        &w,
        &key,
        &device_a,
        base64::engine::general_purpose::STANDARD.encode(
            [
                b"AMANAT-RECEIPT-V1\n".as_slice(),
                &serde_json::to_vec(&tampered).unwrap(),
            ]
            .concat(),
        ),
        0x24,
    );
    let before = sync::retention::acknowledged(&a).unwrap();
    let r = sync::sync_once(&a, &w.http).unwrap();
    assert_eq!(r.quarantined, 3, "{r:?}");
    let mut reasons: Vec<String> = sync::quarantined(&a)
        .unwrap()
        .into_iter()
        .map(|q| q.reason)
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "bad_receipt_signature",
            "bad_receipt_signature",
            "receipt_for_another_device"
        ]
    );
    assert_eq!(
        sync::retention::acknowledged(&a).unwrap(),
        before,
        "nothing acknowledged"
    );
    let now = a.clock().now_ms();
    sync::retention::purge_due(&a, now + 365 * day).unwrap();
    interviews::get(&a, &i4).unwrap();
}

/// `amanat hq devices` and `amanat hq refer` through the real binary: the case reaches B inside
/// the sealed order, B's change reaches A, `--revoke` stops new envelopes to B; an unknown case,
/// an unknown device, no device named and a wrong passphrase are refused with a clear message.
#[test]
fn hq_refer_hands_a_case_to_another_device_and_revoke_takes_it_back() {
    let w = World::new();
    let a = w.device("a");
    let b = w.device("b");
    let (case, interview, _) =
        case_with_interview(&a, &[Scope::Interview, Scope::ShareCaseworkers], None);
    let code = cases::get_case(&a, case).unwrap().code.as_str().to_string();
    sync::sync_once(&a, &w.http).unwrap();
    sync::sync_once(&b, &w.http).unwrap();
    let hq = w.hq_from_org("hq");
    w.pull(&hq, &w.org_pass);
    let device_a = sync::enrollment(&a).unwrap().unwrap().device_id;
    let device_b = sync::enrollment(&b).unwrap().unwrap().device_id;
    let listed = ok(&run(&[
        "hq",
        "devices",
        "--data",
        w.s(&hq),
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    for d in [&device_a, &device_b] {
        assert!(
            listed.contains(&format!("{d}  can receive referrals")),
            "{listed}"
        );
    }
    let refer = |extra: &[&str]| {
        let mut args = vec![
            "hq",
            "refer",
            "--org",
            w.s(&w.org_dir),
            "--data",
            w.s(&hq),
            "--passphrase-file",
            w.s(&w.org_pass),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    // Refused: nothing named, an unknown case, an unknown device, a wrong passphrase.
    assert!(failed(&refer(&["--case", &code])).contains("--to"));
    assert!(failed(&refer(&["--case", "NOPE-0000", "--to", &device_b]))
        .contains("no case with that code"));
    let stranger = "ab".repeat(16);
    assert!(failed(&refer(&["--case", &code, "--to", &stranger]))
        .contains(&format!("device {stranger} is not known here yet")));
    let wrong = w.path("wrong-pass");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let out = run(&[
        "hq",
        "refer",
        "--case",
        &code,
        "--to",
        &device_b,
        "--org",
        w.s(&w.org_dir),
        "--data",
        w.s(&hq),
        "--passphrase-file",
        w.s(&wrong),
    ]);
    assert!(!out.status.success());
    let r = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!((r.pulled, r.quarantined), (0, 0));
    assert!(
        sync::orders::obeyed(&b).unwrap().is_empty(),
        "no order sent"
    );

    let out = ok(&refer(&["--case", &code, "--to", &device_b]));
    assert!(
        out.contains(&format!("case {code} now shared by 2 devices")),
        "{out}"
    );
    sync::sync_once(&a, &w.http).unwrap();
    let r = sync::sync_once(&b, &w.http).unwrap();
    assert_eq!(r.quarantined, 0, "{r:?}");
    let on_b = interviews::get(&b, &interview).unwrap();
    assert_eq!(on_b.hash, interviews::get(&a, &interview).unwrap().hash);
    assert_eq!(on_b.language, "uz");
    cases::set_field(&b, case, "status", "visited").unwrap();
    sync::sync_once(&b, &w.http).unwrap();
    sync::sync_once(&a, &w.http).unwrap();
    let status = |v: &Vault| {
        cases::get_case(v, case)
            .unwrap()
            .fields
            .get("status")
            .and_then(|f| f.current().map(str::to_string))
    };
    assert_eq!(status(&a).as_deref(), Some("visited"));

    let out = ok(&refer(&["--case", &code, "--revoke", &device_b]));
    assert!(
        out.contains(&format!("case {code} now shared by 1 devices")),
        "{out}"
    );
    sync::sync_once(&a, &w.http).unwrap();
    sync::sync_once(&b, &w.http).unwrap();
    cases::set_field(&a, case, "status", "closed").unwrap();
    sync::sync_once(&a, &w.http).unwrap();
    assert_eq!(sync::sync_once(&b, &w.http).unwrap().pulled, 0);
    assert_eq!(status(&b).as_deref(), Some("visited"));
}

/// `amanat org rotate-group` through the real binary: the installation adopts the new key beside
/// the old and sends the order; the device switches; an installation handed the group's file
/// after the rotation (`org export-group`: every key the group had, and the signed order) opens
/// what was sent before and after. A wrong passphrase or an unknown group changes nothing.
#[test]
fn rotate_group_switches_devices_to_the_new_key_and_a_later_holder_reads_old_and_new() {
    let w = World::new();
    let a = w.device("a");
    let (before, _, _) =
        case_with_interview(&a, &[Scope::Interview, Scope::ShareCaseworkers], None);
    sync::sync_once(&a, &w.http).unwrap();
    let hq = w.hq_from_org("hq");
    w.pull(&hq, &w.org_pass);
    let key_file = w.org_dir.join("groups").join("caseworkers.key.age");
    let key_before = std::fs::read(&key_file).unwrap();
    let rotate = |pass: &Path, group: &str| {
        run(&[
            "org",
            "rotate-group",
            group,
            "--org",
            w.s(&w.org_dir),
            "--data",
            w.s(&hq),
            "--passphrase-file",
            w.s(pass),
            "--scrypt-log-n",
            "10",
        ])
    };
    let wrong = w.path("wrong-pass");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    assert!(failed(&rotate(&wrong, "caseworkers")).contains("wrong passphrase"));
    assert!(failed(&rotate(&w.org_pass, "press")).contains("unknown group"));
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        key_before,
        "nothing changed"
    );
    assert!(!w
        .org_dir
        .join("groups")
        .join("caseworkers.1.key.age")
        .exists());

    let out = ok(&rotate(&w.org_pass, "caseworkers"));
    assert!(out.contains("caseworkers: new key in force"), "{out}");
    assert!(
        out.contains("holds the new key beside the old one; order sent to 1 devices"),
        "{out}"
    );
    assert!(w
        .org_dir
        .join("groups")
        .join("caseworkers.1.key.age")
        .exists());
    assert_ne!(std::fs::read(&key_file).unwrap(), key_before);
    sync::sync_once(&a, &w.http).unwrap();
    let (after, _, _) = case_with_interview(&a, &[Scope::Interview, Scope::ShareCaseworkers], None);
    sync::sync_once(&a, &w.http).unwrap();
    let out = w.pull(&hq, &w.org_pass);
    assert!(out.contains(" 0 kept encrypted"), "{out}");
    {
        let v = w.open(&hq, ORG_PASS);
        assert!(cases::get_case(&v, before).is_ok());
        assert!(cases::get_case(&v, after).is_ok());
        v.lock();
    }

    // A second installation holding only `legal`; its operator is then handed the caseworkers
    // file written after the rotation.
    let legal_only = w.path("hq-legal");
    ok(&run(&[
        "hq",
        "init",
        "--data",
        w.s(&legal_only),
        "--relay",
        &w.url,
        "--org",
        w.s(&w.org_dir),
        "--group",
        "legal",
        "--passphrase-file",
        w.s(&w.org_pass),
    ]));
    let out = w.pull(&legal_only, &w.org_pass);
    let held_before = line_count(&out, "kept ");
    assert!(held_before > 0);
    let file = w.path("caseworkers.age");
    ok(&w.export_group("caseworkers", &file, &w.org_pass));
    let out = ok(&w.add_identity(&legal_only, &file, &w.org_pass));
    assert!(
        out.contains("holds the identities of: caseworkers, legal"),
        "{out}"
    );
    let v = w.open(&legal_only, ORG_PASS);
    let s = core_hq::summary(&v).unwrap();
    assert_eq!(s.held, 0, "old and new opened: {s:?}");
    assert!(cases::get_case(&v, before).is_ok());
    assert!(cases::get_case(&v, after).is_ok());
    v.lock();
}
