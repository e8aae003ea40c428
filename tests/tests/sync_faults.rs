//! Faults between a device and the relay, and the relay itself killed: the real relay runs as its
//! own process (`test-relay`, SQLite), devices reach it through the fault-injection proxy
//! (`amanat_tests::proxy`), and a device can itself be a process (`sync-device`) killed with
//! SIGKILL at random points. After retries nothing may be duplicated or lost: the HQ routing at the
//! relay holds each queued change exactly once, and the peer device's replica equals the author's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod net;
mod pg;

use amanat_core::records::cases;
use amanat_core::sync::{
    self, Interruption, Request, Response, Transport, TransportError, BACKOFF_BASE_MS,
    BACKOFF_CAP_MS,
};
use amanat_tests::proxy::{Fault, Seen};
use amanat_transport::HttpTransport;
use net::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn connections_dropped_mid_push_and_mid_pull_and_truncated_answers_lose_and_duplicate_nothing() {
    let net = Net::new();
    let hq = net.hq();
    let (a, ea) = net.enrolled("a");
    let (b, eb) = net.enrolled("b");
    trust(&b, &ea);
    // 60 cases: 120 entries for B (plus the audit entries for HQ), two push batches, two pull
    // pages on B (100 + 20).
    write_cases(&a, &eb, 60);
    let total = sync::pending(&a).unwrap();
    assert!(total > 100 && total <= 200, "{total}");

    // Push: the request cut after 300 bytes (the relay never saw it whole); the answer lost
    // after the relay stored the batch; the answer's body truncated; then clean.
    net.proxy
        .fault("POST", "/v1/envelopes", 0, 1, Fault::DropRequestAfter(300));
    net.proxy
        .fault("POST", "/v1/envelopes", 0, 1, Fault::DropResponseAfter(0));
    net.proxy
        .fault("POST", "/v1/envelopes", 0, 1, Fault::TruncateBody(20));
    let reports = sync_until_done(&a, &net.http, 10);
    assert_eq!(net.proxy.pending_rules(), 0, "every fault fired");
    assert_eq!(reports.len(), 4, "{reports:?}");
    // What crossed the proxy: 300 bytes of the cut request and no answer; the whole second
    // request and no answer; the third answered with its headers and 20 bytes of body only.
    let pushes: Vec<Seen> = net
        .proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && s.path == "/v1/envelopes")
        .collect();
    assert_eq!(pushes.len(), 5, "3 faulted, then 2 batches");
    assert_eq!((pushes[0].up, pushes[0].down), (300, 0));
    assert!(pushes[1].up > 100 * 1024 && pushes[1].down == 0);
    assert_eq!(pushes[2].up, pushes[1].up, "the same batch, byte for byte");
    assert!(pushes[2].down > 20 && pushes[2].down < pushes[3].down);
    // The clean run's body bytes, as the device counted them, crossed the proxy (with headers).
    let seen = net.proxy.seen();
    let third = seen
        .iter()
        .position(|s| s.fault.is_some() && s.down > 0)
        .unwrap();
    let clean_up: u64 = seen[third + 1..].iter().map(|s| s.up).sum();
    let body_up = reports[3].bytes_up;
    assert!(
        clean_up > body_up && clean_up < body_up + 8 * 1024,
        "{clean_up} vs {body_up}"
    );
    for (i, r) in reports[..3].iter().enumerate() {
        assert!(
            matches!(r.interrupted, Some(Interruption::Transport(_))),
            "run {i}: {r:?}"
        );
        assert_eq!(
            (r.pushed, r.pending),
            (0, total),
            "nothing leaves without an ack"
        );
        // The retry schedule doubles with each consecutive failure and is persisted.
        let ceiling = BACKOFF_BASE_MS << i;
        let delay = r.retry_after_ms.unwrap();
        assert!((ceiling / 2..=ceiling).contains(&delay), "run {i}: {delay}");
    }
    assert_eq!(
        sync::backoff(&a).unwrap().consecutive_failures,
        0,
        "reset by the success"
    );
    assert_eq!(sync::backoff(&a).unwrap().next_attempt_ms, None);
    let last = &reports[3];
    assert_eq!(
        (last.pushed, last.pending, last.retry_after_ms),
        (total, 0, None)
    );
    // The first batch was stored twice over (lost answer, truncated answer): the relay said so.
    assert_eq!(last.duplicates, 100, "{last:?}");
    assert_hq_holds_exactly(&net, &hq, &ea.device_id, total as usize);
    assert_eq!(entries_written(&a), total as usize);

    // Pull on B: the first page arrives; the second page's answer is cut mid-body, then lost,
    // then its request cut; then clean. Each page applies with its cursor or not at all.
    net.proxy
        .fault("GET", "/v1/envelopes", 1, 1, Fault::TruncateBody(500));
    net.proxy
        .fault("GET", "/v1/envelopes", 0, 1, Fault::DropResponseAfter(30));
    net.proxy
        .fault("GET", "/v1/envelopes", 0, 1, Fault::DropRequestAfter(10));
    let reports = sync_until_done(&b, &net.http, 10);
    assert_eq!(net.proxy.pending_rules(), 0, "every fault fired");
    assert_eq!(reports.len(), 4, "{reports:?}");
    let pulled: Vec<u64> = reports.iter().map(|r| r.pulled).collect();
    assert_eq!(
        pulled.iter().sum::<u64>(),
        120,
        "each envelope applied once: {pulled:?}"
    );
    assert_eq!(pulled[0], 100, "the first page was kept");
    assert!(reports.iter().all(|r| r.quarantined == 0));
    assert_replica(&a, &b);
    // Nothing more to do for anyone.
    let again = sync::sync_once(&b, &net.http).unwrap();
    assert_eq!((again.pulled, again.pending), (0, 0));
}

#[test]
fn answers_delayed_beyond_the_transport_timeout_are_retried_without_duplicates() {
    let net = Net::new();
    let hq = net.hq();
    let (a, ea) = net.enrolled("a");
    let (b, eb) = net.enrolled("b");
    trust(&b, &ea);
    write_cases(&a, &eb, 5);
    // Generous against a loaded machine: a normal answer takes milliseconds.
    let impatient = HttpTransport::new(Duration::from_millis(2000));
    net.proxy.fault(
        "POST",
        "/v1/envelopes",
        0,
        1,
        Fault::Delay(Duration::from_millis(4000)),
    );
    let first = sync::sync_once(&a, &impatient).unwrap();
    assert_eq!(
        first.interrupted,
        Some(Interruption::Transport(TransportError::Timeout))
    );
    let total = sync::pending(&a).unwrap();
    assert_eq!((first.pushed, first.pending), (0, total));
    let second = sync::sync_once(&a, &impatient).unwrap();
    assert_eq!(
        (second.pushed, second.duplicates, second.pending),
        (total, total, 0)
    );
    assert_hq_holds_exactly(&net, &hq, &ea.device_id, total as usize);
    // A slow pull likewise: the page is not applied, the next run applies it once.
    net.proxy.fault(
        "GET",
        "/v1/envelopes",
        0,
        1,
        Fault::Delay(Duration::from_millis(4000)),
    );
    let first = sync::sync_once(&b, &impatient).unwrap();
    assert_eq!(
        (first.pulled, first.interrupted),
        (0, Some(Interruption::Transport(TransportError::Timeout)))
    );
    let second = sync::sync_once(&b, &impatient).unwrap();
    assert_eq!((second.pulled, second.interrupted), (10, None));
    assert_replica(&a, &b);
    // Delays under the timeout change nothing.
    net.proxy
        .fault_every(Some(Fault::Delay(Duration::from_millis(100))));
    cases::set_field(&a, cases::list_cases(&a).unwrap()[0].id, "status", "closed").unwrap();
    let queued = sync::pending(&a).unwrap();
    assert_eq!(sync::sync_once(&a, &impatient).unwrap().pushed, queued);
    assert_eq!(sync::sync_once(&b, &impatient).unwrap().pulled, 1);
    assert_replica(&a, &b);
}

#[test]
fn relay_killed_and_restarted_mid_sync_loses_and_duplicates_nothing() {
    let net = Net::new();
    let hq = net.hq();
    let (a, ea) = net.enrolled("a");
    let (b, eb) = net.enrolled("b");
    trust(&b, &ea);
    let mut rng = Rng::seeded();
    let mut written = 0usize;
    let mut interrupted = 0;
    // Six rounds: write, then sync both devices while the relay is SIGKILLed at a random moment
    // and started again on the same database; then retry until both are done.
    for round in 0..6 {
        write_cases(&a, &eb, 40);
        written += 40;
        // Slow every answer a little so the kill lands while requests are in flight.
        net.proxy
            .fault_every(Some(Fault::Delay(Duration::from_millis(5))));
        // The kill lands within 40 ms of the round's first request reaching the relay: during a
        // push or a pull (the local prepare step before it takes longer than that in debug).
        let kill_after = Duration::from_millis(rng.below(40));
        let baseline = net.proxy.requests_started();
        let t = &net.http;
        let restarted = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while net.proxy.requests_started() == baseline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::sleep(kill_after);
                net.kill_relay();
                std::thread::sleep(Duration::from_millis(50));
                net.restart_relay();
                restarted.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            // Keep syncing (pushes, then pulls) until the relay has died and come back.
            for _ in 0..500 {
                let ra = sync::sync_once(&a, t).unwrap();
                let rb = sync::sync_once(&b, t).unwrap();
                interrupted += usize::from(ra.interrupted.is_some());
                interrupted += usize::from(rb.interrupted.is_some());
                if restarted.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        net.proxy.clear();
        let ra = sync_until_done(&a, t, 10);
        sync_until_done(&b, t, 10);
        assert_eq!(ra.last().unwrap().pending, 0, "round {round}");
        assert_eq!(case_entries(&a), written * 2);
        assert_hq_holds_exactly(&net, &hq, &ea.device_id, entries_written(&a));
        assert_replica(&a, &b);
    }
    eprintln!("{interrupted} runs cut by the relay's death");
    assert!(interrupted >= 3, "the kills landed mid-sync: {interrupted}");
}

#[test]
fn a_device_killed_at_random_points_resends_nothing_acknowledged_as_new_and_loses_nothing() {
    const TOTAL: usize = 160;
    const KILLS: usize = 24;
    let net = Net::new();
    let hq = net.hq();
    let (a, ea) = net.enrolled("a");
    let (b, eb) = net.enrolled("b");
    trust(&b, &ea);
    drop(a); // the device process owns the vault from now on
    let dir = net.dir("a");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_sync-device"))
            .arg(dir.join("vault"))
            .arg(dir.join("device.key"))
            .arg(TOTAL.to_string())
            .arg(&eb.signing_public_key)
            .arg(&eb.age_recipient)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    let mut rng = Rng::seeded();
    let (mut killed, mut duplicates) = (0, 0u64);
    let mut b_pulled = 0;
    for round in 0..KILLS {
        let mut child = spawn();
        let out = child.stdout.take().unwrap();
        // Collect what it reports while it runs (lines from a killed process may be cut).
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The kill point, whatever the machine's speed: after 0–2 completed sync runs of this
        // process, then 0–60 ms into whatever it does next (writing, preparing, pushing, pulling).
        let runs_first = rng.below(3);
        let mut lines = Vec::new();
        while (lines.len() as u64) < runs_first {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => lines.push(line),
                Err(_) => break, // it exited (drained) or is stuck; the checks below tell
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(60)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            if let ["sync", _, dup, _] = parts[..] {
                duplicates += dup.parse::<u64>().unwrap_or(0);
            }
        }
        // The peer syncs now and then in between (its own cursor across the author's deaths).
        if round % 4 == 3 {
            b_pulled += sync_until_done(&b, &net.http, 5)
                .iter()
                .map(|r| r.pulled)
                .sum::<u64>();
        }
    }
    assert!(
        killed >= KILLS / 2,
        "most runs were killed mid-way: {killed}"
    );
    // The last run is left alone: it writes what remains, drains the outbox and exits.
    let mut child = spawn();
    let out = BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<String> = out.lines().map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        lines.last().map(String::as_str),
        Some("drained"),
        "{lines:?}"
    );

    // (The process checked its outbox was empty before printing `drained`.) Opening the vault
    // here audits the unlock, which queues one entry of its own: sent too, then counted.
    let a = net.open("a");
    assert_eq!(cases::list_cases(&a).unwrap().len(), TOTAL);
    assert_eq!(
        sync::pending(&a).unwrap(),
        1,
        "only this unlock's audit entry"
    );
    sync_until_done(&a, &net.http, 3);
    assert_eq!(sync::pending(&a).unwrap(), 0);
    // At the relay: each change exactly once (a resend of an acknowledged change under a new id
    // would be one more; resends of the same id are only ever answered `duplicate: true`).
    let entries = entries_written(&a);
    assert_hq_holds_exactly(&net, &hq, &ea.device_id, entries);
    // At the peer: every written record, applied once.
    b_pulled += sync_until_done(&b, &net.http, 5)
        .iter()
        .map(|r| r.pulled)
        .sum::<u64>();
    assert_eq!(
        b_pulled,
        case_entries(&a) as u64,
        "each envelope applied once on the peer"
    );
    assert_replica(&a, &b);
    eprintln!("{killed} kills, {entries} changes, {duplicates} resends answered duplicate");
}

// The same tests with the relay on PostgreSQL (skipped without a database; see tests/tests/pg).
postgres_variants!(
    connections_dropped_mid_push_and_mid_pull_and_truncated_answers_lose_and_duplicate_nothing,
    relay_killed_and_restarted_mid_sync_loses_and_duplicates_nothing,
    a_device_killed_at_random_points_resends_nothing_acknowledged_as_new_and_loses_nothing,
);

/// Answers every push with the given status and headers (the relay never sees it).
struct Busy<'a> {
    inner: &'a HttpTransport,
    status: u16,
    retry_after: &'a str,
}

impl Transport for Busy<'_> {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        if request.method == "POST" && request.path == "/v1/envelopes" {
            return Ok(Response {
                status: self.status,
                headers: vec![("Retry-After".into(), self.retry_after.into())],
                body: br#"{"error":"rate_limited"}"#.to_vec(),
            });
        }
        self.inner.send(request)
    }
}

#[test]
fn a_relay_asking_to_wait_longer_than_the_schedule_is_heard_within_the_cap() {
    let net = Net::new();
    let (a, _) = net.enrolled("a");
    cases::create_case(&a).unwrap();
    let queued = sync::pending(&a).unwrap();
    let run = |status, retry_after| {
        let t = Busy {
            inner: &net.http,
            status,
            retry_after,
        };
        sync::sync_once(&a, &t).unwrap()
    };
    // 429 with `Retry-After: 7`: 7 s, above the first step's 0.25–0.5 s.
    let r = run(429, "7");
    assert_eq!(r.interrupted, Some(Interruption::RateLimited));
    assert_eq!(r.retry_after_ms, Some(7_000));
    // 503 with a day: capped at the schedule's 15 minutes.
    let r = run(503, "86400");
    assert_eq!(r.interrupted, Some(Interruption::Server { status: 503 }));
    assert_eq!(r.retry_after_ms, Some(BACKOFF_CAP_MS));
    // Shorter than the schedule, or not a number of seconds: the schedule (3rd failure: 1–2 s).
    for (i, odd) in ["0", "Wed, 21 Oct 2026 07:28:00 GMT", "-5", "1e9"]
        .iter()
        .enumerate()
    {
        let r = run(429, odd);
        let ceiling = BACKOFF_BASE_MS << (2 + i);
        let d = r.retry_after_ms.unwrap();
        assert!((ceiling / 2..=ceiling).contains(&d), "{odd}: {d}");
    }
    assert_eq!(sync::backoff(&a).unwrap().consecutive_failures, 6);
    // The status screen shows the same schedule.
    let status = sync::status(&a).unwrap();
    assert_eq!(status.consecutive_failures, 6);
    assert_eq!(
        status.next_attempt_ms,
        sync::backoff(&a).unwrap().next_attempt_ms
    );
    assert!(status.next_attempt_ms.is_some());
    // The real relay takes it: reset.
    let r = sync::sync_once(&a, &net.http).unwrap();
    assert_eq!((r.pushed, r.pending, r.retry_after_ms), (queued, 0, None));
    assert_eq!(sync::backoff(&a).unwrap(), sync::Backoff::default());
    let status = sync::status(&a).unwrap();
    assert_eq!(
        (status.consecutive_failures, status.next_attempt_ms),
        (0, None)
    );
}

#[test]
fn a_captive_portal_redirect_interrupts_the_run_and_wedges_nothing() {
    let net = Net::new();
    let (a, _) = net.enrolled("a");
    cases::create_case(&a).unwrap();
    cases::create_case(&a).unwrap();
    let queued = sync::pending(&a).unwrap();
    // Village Wi-Fi answering every request with a redirect to its login page: no relay says
    // that, so it is the network in between, not a refusal of these entries.
    for status in [302, 307, 301] {
        let portal = Busy {
            inner: &net.http,
            status,
            retry_after: "",
        };
        let r = sync::sync_once(&a, &portal).unwrap();
        assert_eq!(r.interrupted, Some(Interruption::Server { status }));
        assert_eq!((r.pushed, r.wedged, r.pending), (0, 0, queued), "{status}");
        assert!(r.retry_after_ms.is_some());
        assert!(sync::wedged(&a).unwrap().is_empty());
    }
    let r = sync::sync_once(&a, &net.http).unwrap();
    assert_eq!((r.pushed, r.pending), (queued, 0));
}
