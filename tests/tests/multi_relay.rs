//! Several stateless relays on one PostgreSQL (issue #14, item 2): two relay processes share a
//! database; devices are spread across them and push at the same time. The per-organisation
//! sequence stays gap-free, every acknowledged envelope is pulled exactly once per recipient
//! through either relay, a team device on the other relay receives its peer's cases once each,
//! and a revocation posted to one relay wipes a device that talks to the other. PostgreSQL only
//! (SQLite is one process's file): skipped without `AMANAT_TEST_DATABASE_URL`, required in CI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod net;
mod pg;

use amanat_core::records::cases;
use amanat_core::sync::{self, Request, SyncError, Transport};
use amanat_server::org;
use net::{case_entries, pass, sync_until_done, write_cases, Net};
use std::collections::BTreeSet;

fn two_relays_on_one_database_keep_one_gap_free_sequence_and_deliver_each_envelope_once() {
    let net = Net::new(); // relay 1 (behind the proxy) on a fresh PostgreSQL database
    let relay2 = net.spawn_relay();
    let url1 = format!("http://{}", net.relay_addr());
    let url2 = format!("http://{}", relay2.addr);
    let hq = net.hq();
    // A and B on relay 1, C and D on relay 2; A's cases are shared with C (across relays).
    let (a, ea) = net.enrolled_at("a", &url1);
    let (b, eb) = net.enrolled_at("b", &url1);
    let (c, ec) = net.enrolled_at("c", &url2);
    let (d, ed) = net.enrolled_at("d", &url2);
    net::trust(&c, &ea);
    let rounds = 3;
    let per_round = 15;
    for _ in 0..rounds {
        write_cases(&a, &ec, per_round);
        for v in [&b, &c, &d] {
            for i in 0..per_round {
                let case = cases::create_case(v).unwrap();
                cases::set_field(v, case.id, "status", &format!("s{i}")).unwrap();
            }
        }
        // All four push at once, two through each relay.
        std::thread::scope(|s| {
            for v in [&a, &b, &c, &d] {
                let http = &net.http;
                s.spawn(move || sync_until_done(v, http, 5));
            }
        });
    }
    for v in [&a, &b, &c, &d] {
        assert_eq!(sync::pending(v).unwrap(), 0);
    }
    // HQ's view through each relay: the same envelopes, numbered 1..=n with no gap, each once.
    let via1 = net.pulled_from(net.relay_addr(), &hq);
    let via2 = net.pulled_from(relay2.addr, &hq);
    assert_eq!(via1, via2, "both relays serve the same sequence");
    let seqs: Vec<u64> = via1.iter().map(|(s, _, _)| *s).collect();
    let n = seqs.len() as u64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "gap-free, in order");
    let ids: BTreeSet<&str> = via1.iter().map(|(_, id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), via1.len(), "each envelope once");
    // Per device: its own case writes (create + status, 2 per case), its audit entries, its
    // profile (C also holds A's cases: not counted as its writes).
    let mut written = 0;
    for (v, e) in [(&a, &ea), (&b, &eb), (&c, &ec), (&d, &ed)] {
        let store = v.store().unwrap();
        let own = 2 * rounds * per_round
            + amanat_core::journal::audit::entries(&store).unwrap().len()
            + 1;
        let got = via1.iter().filter(|(_, _, s)| *s == e.device_id).count();
        assert_eq!(
            got, own,
            "every acknowledged change of {}, once",
            e.device_id
        );
        written += own;
    }
    assert_eq!(via1.len(), written, "nothing else");
    // C (on relay 2) received each of A's case changes (pushed through relay 1) exactly once.
    // C pulled most of them during the rounds (A's last pushes may land after C's last pull of
    // the round): one sync catches up, the next finds nothing new.
    sync_until_done(&c, &net.http, 5);
    let again: u64 = sync_until_done(&c, &net.http, 5)
        .iter()
        .map(|r| r.pulled)
        .sum();
    assert_eq!(again, 0);
    assert_eq!(
        amanat_core::sync::verify_custody(&c)
            .unwrap()
            .applied_envelopes,
        case_entries(&a) as u64,
        "each of A's case envelopes applied once on C"
    );
    let c_cases: BTreeSet<_> = cases::list_cases(&c)
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    for case in cases::list_cases(&a).unwrap() {
        assert!(c_cases.contains(&case.id));
    }
    // A revocation posted to relay 2 reaches B, which talks to relay 1: B wipes itself.
    let revocation = org::revoke(&net.org_dir, &pass(), &eb.device_id).unwrap();
    let resp = net
        .http
        .send(&Request {
            method: "POST".into(),
            base_url: url2.clone(),
            path: "/v1/revocations".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&revocation).unwrap(),
        })
        .unwrap();
    assert_eq!(resp.status, 200);
    assert!(matches!(
        sync::sync_once(&b, &net.http),
        Err(SyncError::Revoked)
    ));
    assert!(!net.dir("b").join("vault").join("keyslots.json").exists());
    relay2.kill();
}

#[test]
fn postgres_two_relays_on_one_database_keep_one_gap_free_sequence_and_deliver_each_envelope_once() {
    pg::on_postgres(
        two_relays_on_one_database_keep_one_gap_free_sequence_and_deliver_each_envelope_once,
    );
}
