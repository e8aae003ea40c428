//! A TCP fault-injection proxy on 127.0.0.1 between a device's transport and the relay.
//!
//! It speaks just enough HTTP/1.1 to see request boundaries: it reads one request from the
//! device (headers and `content-length` body), forwards it upstream with `Connection: close`,
//! reads the whole answer until the relay closes, and hands it back. So every connection carries
//! exactly one request, and a test can aim a fault at "the 2nd `POST /v1/envelopes`" however the
//! client pools connections. Faults: drop the request after N bytes (the relay never sees it
//! whole), drop or truncate the answer (the relay acted, the device never learns it), delay the
//! answer (beyond the transport's timeout), or refuse the connection. It counts the bytes each way
//! and logs each request's method, path and sizes. The upstream address can be changed while it
//! runs (a relay restarted on another port). Plain `std` threads, no runtime.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward only the first `n` bytes of the request, then close both sides.
    DropRequestAfter(usize),
    /// Forward the request whole, hand back only the first `n` bytes of the answer, then close.
    DropResponseAfter(usize),
    /// Forward the request whole; hand back the answer's headers and only `n` bytes of its body.
    TruncateBody(usize),
    /// Forward the request whole; wait this long before handing back the answer.
    Delay(Duration),
    /// Close the device's connection without reading or forwarding anything.
    Refuse,
}

/// One request as the proxy saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Request bytes forwarded upstream (headers included).
    pub up: u64,
    /// Answer bytes handed back to the device (headers included).
    pub down: u64,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
}

struct Rule {
    method: String,
    path_prefix: String,
    skip: usize,
    times: usize,
    fault: Fault,
}

#[derive(Default)]
struct Shared {
    upstream: Mutex<Option<SocketAddr>>,
    rules: Mutex<Vec<Rule>>,
    every: Mutex<Option<Fault>>,
    seen: Mutex<Vec<Seen>>,
    up: AtomicU64,
    down: AtomicU64,
    started: AtomicU64,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 (a free port) forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        *lock(&shared.upstream) = Some(upstream);
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let s = s.clone();
                    std::thread::spawn(move || handle(&s, conn));
                }
            }
        });
        Ok(Self {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The address devices connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, the relay URL to give the device.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Points the proxy at another relay (`None`: every connection is refused, as if it were down).
    pub fn set_upstream(&self, upstream: Option<SocketAddr>) {
        *lock(&self.shared.upstream) = upstream;
    }

    /// Applies `fault` to the next `times` requests whose method is `method` and whose path
    /// starts with `path_prefix`, after letting `skip` such requests through untouched.
    pub fn fault(&self, method: &str, path_prefix: &str, skip: usize, times: usize, fault: Fault) {
        lock(&self.shared.rules).push(Rule {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            skip,
            times,
            fault,
        });
    }

    /// Applies `fault` to every request no rule claims (`None`: none).
    pub fn fault_every(&self, fault: Option<Fault>) {
        *lock(&self.shared.every) = fault;
    }

    /// Removes every rule and the default fault.
    pub fn clear(&self) {
        lock(&self.shared.rules).clear();
        *lock(&self.shared.every) = None;
    }

    /// Rules not yet used up (a test checks its faults really fired).
    pub fn pending_rules(&self) -> usize {
        lock(&self.shared.rules).len()
    }

    /// Request bytes forwarded to the relay so far.
    pub fn bytes_up(&self) -> u64 {
        self.shared.up.load(Ordering::SeqCst)
    }

    /// Answer bytes handed back to devices so far.
    pub fn bytes_down(&self) -> u64 {
        self.shared.down.load(Ordering::SeqCst)
    }

    /// Requests that have arrived so far (counted on arrival, before any answer).
    pub fn requests_started(&self) -> u64 {
        self.shared.started.load(Ordering::SeqCst)
    }

    /// Every request finished so far (answered, cut or refused), in the order they finished.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Picks the fault for one request (rules first, in the order added).
fn pick(shared: &Shared, method: &str, path: &str) -> Option<Fault> {
    let mut rules = lock(&shared.rules);
    let pos = rules
        .iter()
        .position(|r| r.method == method && path.starts_with(&r.path_prefix));
    if let Some(i) = pos {
        let rule = &mut rules[i];
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        let fault = rule.fault.clone();
        rule.times -= 1;
        if rule.times == 0 {
            rules.remove(i);
        }
        return Some(fault);
    }
    drop(rules);
    lock(&shared.every).clone()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request: returns (method, path, rewritten bytes with `Connection: close`).
fn read_request(conn: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 256 * 1024 {
            return None;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?.to_string();
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    let mut parts = first.split(' ');
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    let mut out = format!("{first}\r\n").into_bytes();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let lower = name.trim().to_ascii_lowercase();
        if lower == "content-length" {
            length = value.trim().parse().ok()?;
        }
        if lower == "connection" || lower == "keep-alive" {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    out.extend_from_slice(&body);
    Some((method, path, out))
}

fn handle(shared: &Shared, mut conn: TcpStream) {
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    let Some((method, path, request)) = read_request(&mut conn) else {
        return;
    };
    shared.started.fetch_add(1, Ordering::SeqCst);
    let fault = pick(shared, &method, &path);
    let mut seen = Seen {
        method,
        path,
        up: 0,
        down: 0,
        fault: fault.clone(),
    };
    let answer = exchange(shared, &request, fault.as_ref(), &mut seen);
    if let Some(answer) = answer {
        let cut = match &fault {
            Some(Fault::DropResponseAfter(n)) => (*n).min(answer.len()),
            Some(Fault::TruncateBody(n)) => match find(&answer, b"\r\n\r\n") {
                Some(i) => (i + 4 + n).min(answer.len()),
                None => answer.len(),
            },
            _ => answer.len(),
        };
        if let Some(Fault::Delay(d)) = &fault {
            std::thread::sleep(*d);
        }
        if conn.write_all(&answer[..cut]).is_ok() {
            seen.down = cut as u64;
            shared.down.fetch_add(cut as u64, Ordering::SeqCst);
        }
    }
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
    lock(&shared.seen).push(seen);
}

/// Sends the request upstream (whole or cut) and reads the answer to the end; `None` if there is
/// no answer to hand back.
fn exchange(
    shared: &Shared,
    request: &[u8],
    fault: Option<&Fault>,
    seen: &mut Seen,
) -> Option<Vec<u8>> {
    if fault == Some(&Fault::Refuse) {
        return None;
    }
    let upstream = (*lock(&shared.upstream))?;
    let mut up = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)).ok()?;
    let _ = up.set_read_timeout(Some(Duration::from_secs(60)));
    let send = match fault {
        Some(Fault::DropRequestAfter(n)) => (*n).min(request.len()),
        _ => request.len(),
    };
    up.write_all(&request[..send]).ok()?;
    seen.up = send as u64;
    shared.up.fetch_add(send as u64, Ordering::SeqCst);
    if send < request.len() {
        let _ = up.shutdown(Shutdown::Both);
        return None;
    }
    let mut answer = Vec::new();
    // A relay killed mid-answer: whatever arrived is handed back (the device sees it cut).
    let _ = up.read_to_end(&mut answer);
    Some(answer)
}
