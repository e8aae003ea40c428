//! Prometheus text exposition (format 0.0.4), hand-written: a handful of counters do not justify
//! a metrics crate. Counters are per relay process; sum them across relays in Prometheus.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The relay's counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(u16, &'static str), u64>>,
    stored: AtomicU64,
    duplicates: AtomicU64,
    pulled: AtomicU64,
    blob_bytes: AtomicU64,
}

impl Metrics {
    /// Counts one response by status and error code (empty for success).
    pub fn request(&self, status: u16, code: Option<&'static str>) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((status, code.unwrap_or(""))).or_insert(0) += 1;
    }

    /// Counts envelopes newly stored and duplicates acknowledged again.
    pub fn envelopes_stored(&self, fresh: u64, duplicates: u64) {
        self.stored.fetch_add(fresh, Ordering::Relaxed);
        self.duplicates.fetch_add(duplicates, Ordering::Relaxed);
    }

    /// Counts envelopes served by pulls.
    pub fn envelopes_pulled(&self, n: u64) {
        self.pulled.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts blob bytes accepted.
    pub fn blob_bytes(&self, n: u64) {
        self.blob_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Renders the text format; `max_seq` is the highest sequence number in the shared store.
    pub fn render(&self, max_seq: Option<u64>) -> String {
        let mut s = String::new();
        s.push_str("# HELP amanat_requests_total HTTP responses by status and error code.\n");
        s.push_str("# TYPE amanat_requests_total counter\n");
        let m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((status, code), n) in m.iter() {
            let _ = writeln!(
                s,
                "amanat_requests_total{{status=\"{status}\",error=\"{code}\"}} {n}"
            );
        }
        drop(m);
        let counters = [
            (
                "amanat_envelopes_stored_total",
                "Envelopes newly stored by this relay.",
                &self.stored,
            ),
            (
                "amanat_envelopes_duplicate_total",
                "Pushed envelopes already held (retries).",
                &self.duplicates,
            ),
            (
                "amanat_envelopes_pulled_total",
                "Envelopes served to pulls.",
                &self.pulled,
            ),
            (
                "amanat_blob_bytes_received_total",
                "Blob chunk bytes accepted.",
                &self.blob_bytes,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        if let Some(seq) = max_seq {
            s.push_str("# HELP amanat_sequence_max Highest sequence number assigned in the store.\n# TYPE amanat_sequence_max gauge\n");
            let _ = writeln!(s, "amanat_sequence_max {seq}");
        }
        s
    }
}
