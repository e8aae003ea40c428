#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The OpenAPI document against the code: for valid and invalid example requests, the relay
//! refuses as malformed exactly those that the document's schemas refuse. The schemas are read
//! from the served `/openapi.json` and checked by the small validator below (type, required,
//! additionalProperties, pattern, min/maxLength, minimum/maximum, min/maxItems, enum, $ref) with a
//! small regex matcher for the patterns, so the document is tested as a client generator reads it.
//! The backend does not matter for these checks: SQLite only.

use amanat_protocol::{DeviceRole, EnrollmentCode, OrgPublic, Revocation};
use amanat_server::relay::{self, sqlite::SqliteStorage, RelayConfig, RunningRelay};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------- a tiny regex (subset) matcher

#[derive(Debug)]
enum Atom {
    Char(char),
    Class(Vec<(char, char)>),
    Group(Vec<Vec<(Atom, usize, usize)>>),
}

struct Parser<'a> {
    s: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }
    fn next(&mut self) -> char {
        let c = self.s[self.i];
        self.i += 1;
        c
    }
    fn alt(&mut self) -> Vec<Vec<(Atom, usize, usize)>> {
        let mut alts = vec![self.seq()];
        while self.peek() == Some('|') {
            self.i += 1;
            alts.push(self.seq());
        }
        alts
    }
    fn seq(&mut self) -> Vec<(Atom, usize, usize)> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = match self.next() {
                '(' => {
                    if self.s[self.i..].starts_with(&['?', ':']) {
                        self.i += 2;
                    }
                    let g = self.alt();
                    assert_eq!(self.next(), ')');
                    Atom::Group(g)
                }
                '[' => {
                    let mut ranges = Vec::new();
                    while self.peek() != Some(']') {
                        let a = self.next();
                        if self.peek() == Some('-') && self.s.get(self.i + 1) != Some(&']') {
                            self.i += 1;
                            ranges.push((a, self.next()));
                        } else {
                            ranges.push((a, a));
                        }
                    }
                    self.i += 1;
                    Atom::Class(ranges)
                }
                '\\' => Atom::Char(self.next()),
                c => {
                    assert!(!"^$.+".contains(c), "unsupported {c}");
                    Atom::Char(c)
                }
            };
            let (min, max) = match self.peek() {
                Some('*') => {
                    self.i += 1;
                    (0, usize::MAX)
                }
                Some('?') => {
                    self.i += 1;
                    (0, 1)
                }
                Some('{') => {
                    self.i += 1;
                    let mut body = String::new();
                    while self.peek() != Some('}') {
                        body.push(self.next());
                    }
                    self.i += 1;
                    match body.split_once(',') {
                        Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                        None => (body.parse().unwrap(), body.parse().unwrap()),
                    }
                }
                _ => (1, 1),
            };
            out.push((atom, min, max));
        }
        out
    }
}

fn atom_ends(a: &Atom, s: &[char], pos: usize) -> BTreeSet<usize> {
    match a {
        Atom::Char(c) => s
            .get(pos)
            .filter(|x| *x == c)
            .map(|_| pos + 1)
            .into_iter()
            .collect(),
        Atom::Class(r) => s
            .get(pos)
            .filter(|x| r.iter().any(|(a, b)| (a..=b).contains(x)))
            .map(|_| pos + 1)
            .into_iter()
            .collect(),
        Atom::Group(alts) => alts.iter().flat_map(|q| seq_ends(q, s, pos)).collect(),
    }
}

fn seq_ends(q: &[(Atom, usize, usize)], s: &[char], pos: usize) -> BTreeSet<usize> {
    let mut cur: BTreeSet<usize> = [pos].into();
    for (atom, min, max) in q {
        let mut reached = if *min == 0 {
            cur.clone()
        } else {
            BTreeSet::new()
        };
        let mut frontier = cur;
        let mut seen = BTreeSet::new();
        let mut n = 0;
        while !frontier.is_empty() && n < *max {
            n += 1;
            let next: BTreeSet<usize> = frontier
                .iter()
                .flat_map(|p| atom_ends(atom, s, *p))
                .filter(|p| *max != usize::MAX || seen.insert(*p))
                .collect();
            if n >= *min {
                reached.extend(next.iter().copied());
            }
            frontier = next;
        }
        cur = reached;
    }
    cur
}

/// Full match of an anchored pattern `^…$`.
fn matches(pattern: &str, text: &str) -> bool {
    let inner = pattern
        .strip_prefix('^')
        .unwrap()
        .strip_suffix('$')
        .unwrap();
    let chars: Vec<char> = inner.chars().collect();
    let mut p = Parser { s: &chars, i: 0 };
    let alts = p.alt();
    assert_eq!(p.i, chars.len(), "unparsed pattern {pattern}");
    let s: Vec<char> = text.chars().collect();
    alts.iter().any(|q| seq_ends(q, &s, 0).contains(&s.len()))
}

#[test]
fn matcher_works() {
    assert!(matches("^[0-9a-f]{4}$", "09af"));
    assert!(!matches("^[0-9a-f]{4}$", "09aF"));
    assert!(matches("^(hq|[0-9]{2})$", "hq") && matches("^(hq|[0-9]{2})$", "12"));
    assert!(!matches("^(hq|[0-9]{2})$", "hq1"));
    assert!(matches("^(0|[1-9][0-9]{0,2})$", "0") && matches("^(0|[1-9][0-9]{0,2})$", "999"));
    assert!(!matches("^(0|[1-9][0-9]{0,2})$", "01") && !matches("^(0|[1-9][0-9]{0,2})$", "1000"));
    assert!(matches("^([a-z]{2})*(x=)?$", "abcdx=") && !matches("^([a-z]{2})*(x=)?$", "abc"));
}

// ---------------------------------------------------------------- a tiny JSON-schema validator

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let mut v = doc;
            for part in r.trim_start_matches("#/").split('/') {
                v = &v[part];
            }
            resolve(doc, v)
        }
        None => schema,
    }
}

fn valid(doc: &Value, schema: &Value, v: &Value) -> bool {
    let s = resolve(doc, schema);
    let num = |k: &str| s[k].as_u64();
    if let Some(list) = s["enum"].as_array() {
        if !list.contains(v) {
            return false;
        }
    }
    match s["type"].as_str() {
        Some("object") => {
            let Some(o) = v.as_object() else { return false };
            let props = s["properties"].as_object().cloned().unwrap_or_default();
            if let Some(req) = s["required"].as_array() {
                if !req.iter().all(|k| o.contains_key(k.as_str().unwrap())) {
                    return false;
                }
            }
            if s["additionalProperties"] == json!(false) && !o.keys().all(|k| props.contains_key(k))
            {
                return false;
            }
            o.iter()
                .all(|(k, x)| props.get(k).is_none_or(|ps| valid(doc, ps, x)))
        }
        Some("array") => {
            let Some(a) = v.as_array() else { return false };
            num("minItems").is_none_or(|m| a.len() as u64 >= m)
                && num("maxItems").is_none_or(|m| a.len() as u64 <= m)
                && a.iter().all(|x| valid(doc, &s["items"], x))
        }
        Some("string") => {
            let Some(t) = v.as_str() else { return false };
            let n = t.chars().count() as u64;
            num("minLength").is_none_or(|m| n >= m)
                && num("maxLength").is_none_or(|m| n <= m)
                && s["pattern"].as_str().is_none_or(|p| matches(p, t))
        }
        Some("integer") => {
            // serde_json keeps integers as i64/u64; a float or a huge number is not an integer here.
            let Some(i) = v.as_i64().map(i128::from).or(v.as_u64().map(i128::from)) else {
                return false;
            };
            s["minimum"].as_i64().is_none_or(|m| i >= i128::from(m))
                && s["maximum"].as_u64().is_none_or(|m| i <= i128::from(m))
        }
        Some("boolean") => v.is_boolean(),
        _ => true,
    }
}

/// A header or query value as a generated client would send it: an integer parameter is sent as
/// its canonical decimal, so only such text is valid for it.
fn param_valid(doc: &Value, param: &Value, text: &str) -> bool {
    let p = resolve(doc, param);
    let schema = &p["schema"];
    if schema["type"] == "integer" {
        let canonical = text.parse::<i128>().is_ok_and(|n| n.to_string() == text);
        canonical && valid(doc, schema, &serde_json::from_str::<Value>(text).unwrap())
    } else {
        valid(doc, schema, &Value::from(text))
    }
}

// ---------------------------------------------------------------- the relay

fn key() -> Ed25519KeyPair {
    amanat_protocol::ed25519_from_pkcs8(&amanat_protocol::generate_ed25519_pkcs8().unwrap())
        .unwrap()
}

struct Env {
    _dir: tempfile::TempDir,
    relay: RunningRelay,
    org_key: Ed25519KeyPair,
    org: OrgPublic,
    device: Ed25519KeyPair,
    http: reqwest::Client,
    doc: Value,
}

impl Env {
    async fn start(cfg: RelayConfig) -> Self {
        let org_key = key();
        let mut groups = BTreeMap::new();
        for g in amanat_protocol::RECIPIENT_GROUPS {
            groups.insert(
                g.to_owned(),
                age::x25519::Identity::generate().to_public().to_string(),
            );
        }
        let mut org = OrgPublic {
            version: 1,
            signing_public_key: amanat_protocol::to_hex(org_key.public_key().as_ref()),
            groups,
            fingerprint: String::new(),
        };
        org.fingerprint = org.compute_fingerprint();
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStorage::open(dir.path()).unwrap();
        let relay = relay::start("127.0.0.1:0".parse().unwrap(), org.clone(), cfg, store)
            .await
            .unwrap();
        let mut env = Self {
            _dir: dir,
            relay,
            org_key,
            org,
            device: key(),
            http: reqwest::Client::new(),
            doc: Value::Null,
        };
        let (s, body) = env.send("GET", "/openapi.json", vec![], vec![]).await;
        assert_eq!(s, 200);
        env.doc = body;
        let device = std::mem::replace(&mut env.device, key());
        let req = env.enroll_body(&device, env.code());
        let (s, out) = env
            .signed(&device, "POST", "/v1/enroll", req.to_string().into_bytes())
            .await;
        assert_eq!(s, 200, "{out}");
        env.device = device;
        env
    }

    fn code(&self) -> Value {
        let exp = relay::now_ms() / 1000 + 600;
        serde_json::to_value(
            EnrollmentCode::issue(&self.org_key, &self.org.fingerprint, exp, DeviceRole::Field)
                .unwrap(),
        )
        .unwrap()
    }

    fn enroll_body(&self, dev: &Ed25519KeyPair, code: Value) -> Value {
        json!({
            "code": code,
            "signing_public_key": amanat_protocol::to_hex(dev.public_key().as_ref()),
            "age_recipient": age::x25519::Identity::generate().to_public().to_string(),
        })
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: Vec<(&str, String)>,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("http://{}{}", self.relay.addr, path))
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let s = resp.status().as_u16();
        let b = resp.bytes().await.unwrap();
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    fn sign(
        &self,
        dev: &Ed25519KeyPair,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let h = amanat_protocol::sign_request(dev, method, path, relay::now_ms(), body).unwrap();
        h.pairs().iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    async fn signed(
        &self,
        dev: &Ed25519KeyPair,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let h = self.sign(dev, method, path, &body);
        self.send(method, path, h, body).await
    }

    fn schema(&self, name: &str) -> Value {
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }
}

/// Records disagreements instead of stopping at the first, so one run shows them all.
#[derive(Default)]
struct Verdicts(Vec<String>);

impl Verdicts {
    fn check(&mut self, what: &str, schema_ok: bool, status: u16, refused: &[u16], body: &Value) {
        let relay_refused = refused.contains(&status);
        if schema_ok == relay_refused {
            self.0.push(format!(
                "{what}: schema says {}, relay answered {status} {body}",
                if schema_ok { "valid" } else { "invalid" }
            ));
        }
    }
}

const BIG: &str = "9223372036854775807";
const TOO_BIG: &str = "9223372036854775808";

fn uuid7(n: u64) -> String {
    let r = amanat_protocol::new_nonce().unwrap();
    format!(
        "01890a5d-ac96-7{:03x}-8{}-{}",
        n & 0xfff,
        &r[..3],
        &r[3..15]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_accepts_exactly_what_the_document_accepts() {
    let cfg = RelayConfig {
        rate_per_sec: 100_000.0,
        rate_burst: 100_000.0,
        max_envelope_bytes: 1000,
        max_batch_envelopes: 5,
        ..RelayConfig::default()
    };
    let env = Env::start(cfg).await;
    let doc = env.doc.clone();
    let mut v = Verdicts::default();

    // Revocations (unsigned route): each field replaced by values in and out of its format. The
    // devices named are not enrolled, so a valid body is refused as 404/403, never as malformed.
    let base = serde_json::to_value(Revocation::issue(
        &env.org_key,
        &env.org.fingerprint,
        &amanat_protocol::to_hex(&[7u8; 16]),
        1_700_000_000,
    ))
    .unwrap();
    let hex = |n: usize| "a1".repeat(n / 2) + if n % 2 == 1 { "b" } else { "" };
    let strings = |n: usize| -> Vec<Value> {
        vec![
            hex(n).into(),
            hex(n).to_uppercase().into(),
            hex(n - 1).into(),
            hex(n + 1).into(),
            "".into(),
            "g".repeat(n).into(),
            json!(1),
            Value::Null,
        ]
    };
    let integers: Vec<Value> = vec![
        json!(0),
        json!(1),
        serde_json::from_str(BIG).unwrap(),
        serde_json::from_str(TOO_BIG).unwrap(),
        json!(-1),
        json!(1.5),
        json!("1"),
    ];
    let rev_schema = env.schema("Revocation");
    let mut variants: Vec<(String, Value)> = vec![("base".into(), base.clone())];
    for (field, values) in [
        ("device_id", strings(32)),
        ("org_fingerprint", strings(64)),
        ("signature", strings(128)),
        ("revoked_at", integers.clone()),
    ] {
        for x in values {
            let mut b = base.clone();
            b[field] = x.clone();
            variants.push((format!("revocation {field}={x}"), b));
        }
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(field);
        variants.push((format!("revocation without {field}"), b));
    }
    let mut extra = base.clone();
    extra["colour"] = "blue".into();
    variants.push(("revocation with an extra field".into(), extra));
    for (what, body) in variants {
        let ok = valid(&doc, &rev_schema, &body);
        let (s, out) = env
            .send(
                "POST",
                "/v1/revocations",
                vec![],
                body.to_string().into_bytes(),
            )
            .await;
        v.check(&what, ok, s, &[400], &out);
    }

    // Enrollment: code fields, key, recipient. Signed by the key in the body (a valid body gets
    // 200 or a non-format refusal).
    let enroll_schema = env.schema("EnrollRequest");
    let mut variants: Vec<(String, Value)> = Vec::new();
    for (field, values) in [
        ("code_id", strings(32)),
        ("org_fingerprint", strings(64)),
        ("signature", strings(128)),
        ("expires_at", integers.clone()),
        (
            "role",
            vec![json!("field"), json!("hq"), json!("admin"), json!("Field")],
        ),
    ] {
        for x in values {
            variants.push((format!("code {field}={x}"), json!([field, x])));
        }
    }
    let rec = age::x25519::Identity::generate().to_public().to_string();
    for r in [
        rec.clone(),
        rec.to_uppercase(),
        rec[..61].to_string(),
        format!("{rec}q"),
        "age1".into(),
        "age1xyz".into(),
        rec.replacen('q', "b", 1),
    ] {
        variants.push((format!("age_recipient={r}"), json!(["age_recipient", r])));
    }
    for (what, change) in variants {
        let dev = key();
        let mut body = env.enroll_body(&dev, env.code());
        let (field, x) = (change[0].as_str().unwrap(), change[1].clone());
        if field == "age_recipient" {
            body[field] = x;
        } else {
            body["code"][field] = x;
        }
        let ok = valid(&doc, &enroll_schema, &body);
        let (s, out) = env
            .signed(&dev, "POST", "/v1/enroll", body.to_string().into_bytes())
            .await;
        v.check(&what, ok, s, &[400], &out);
    }
    for pk in ["UPPER", "short", "other"] {
        let dev = key();
        let mut body = env.enroll_body(&dev, env.code());
        let real = body["signing_public_key"].as_str().unwrap().to_string();
        body["signing_public_key"] = match pk {
            "UPPER" => real.to_uppercase(),
            "short" => real[..62].to_string(),
            _ => amanat_protocol::to_hex(key().public_key().as_ref()),
        }
        .into();
        let ok = valid(&doc, &enroll_schema, &body);
        let (s, out) = env
            .signed(&dev, "POST", "/v1/enroll", body.to_string().into_bytes())
            .await;
        v.check(&format!("signing_public_key {pk}"), ok, s, &[400], &out);
    }

    // Pushes: envelope id, recipients, payload, batch size. A valid push must be stored (200);
    // an invalid one refused as malformed (400) or too large (413).
    let push_schema = env.schema("PushRequest");
    let dev_id = amanat_protocol::device_id(env.device.public_key().as_ref());
    let payload_max = "A".repeat(1000 / 3 * 4);
    let mut n = 0u64;
    let mut envelope = |id: Option<Value>, recipients: Value, payload: Value| {
        n += 1;
        json!({ "id": id.unwrap_or_else(|| uuid7(n).into()), "recipients": recipients, "payload": payload })
    };
    let mut pushes: Vec<(String, Value)> = Vec::new();
    for id in [
        uuid7(9001),
        uuid7(9002).to_uppercase(),
        uuid7(9003).replacen("-7", "-4", 1),
        uuid7(9004).replacen("-8", "-c", 1),
        "not-a-uuid".into(),
        uuid7(9005)[..35].to_string(),
    ] {
        pushes.push((
            format!("id {id}"),
            json!([envelope(Some(id.into()), json!(["hq"]), json!("AAEC"))]),
        ));
    }
    let many: Vec<Value> = (0..64)
        .map(|i| Value::from(amanat_protocol::to_hex(&[i as u8; 16])))
        .collect();
    let mut too_many = many.clone();
    too_many.push("hq".into());
    for (what, r) in [
        ("hq", json!(["hq"])),
        ("device", json!([dev_id])),
        ("duplicates", json!(["hq", "hq"])),
        ("64", Value::Array(many)),
        ("65", Value::Array(too_many)),
        ("none", json!([])),
        ("HQ", json!(["HQ"])),
        ("everyone", json!(["everyone"])),
        ("number", json!([1])),
    ] {
        pushes.push((
            format!("recipients {what}"),
            json!([envelope(None, r, json!("AAEC"))]),
        ));
    }
    for p in [
        "AAEC",
        "AA==",
        "AAE=",
        "QR==",
        "QUI=",
        "QUJ=",
        "A",
        "AA",
        "AAE",
        "",
        "AAEC\n",
        "AA=C",
        "////",
        "-_-_",
        payload_max.as_str(),
    ] {
        pushes.push((
            format!("payload {p:.12}"),
            json!([envelope(None, json!(["hq"]), json!(p))]),
        ));
    }
    let over = "A".repeat(1000 / 3 * 4 + 4);
    pushes.push((
        "payload over maxLength".into(),
        json!([envelope(None, json!(["hq"]), json!(over))]),
    ));
    let five: Vec<Value> = (0..5)
        .map(|_| envelope(None, json!(["hq"]), json!("AAEC")))
        .collect();
    let six: Vec<Value> = (0..6)
        .map(|_| envelope(None, json!(["hq"]), json!("AAEC")))
        .collect();
    pushes.push(("5 envelopes".into(), Value::Array(five)));
    pushes.push(("6 envelopes".into(), Value::Array(six)));
    pushes.push(("0 envelopes".into(), json!([])));
    for (what, envs) in pushes {
        let body = json!({ "envelopes": envs });
        let ok = valid(&doc, &push_schema, &body);
        let (s, out) = env
            .signed(
                &env.device,
                "POST",
                "/v1/envelopes",
                body.to_string().into_bytes(),
            )
            .await;
        v.check(&what, ok, s, &[400, 413], &out);
        if ok {
            assert_eq!(s, 200, "{what}: valid push not stored: {out}");
        }
    }

    // Query and header parameters, read from the operations' parameter lists.
    let pull_params = doc["paths"]["/v1/envelopes"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .clone();
    let param = |list: &[Value], name: &str| -> Value {
        list.iter()
            .map(|p| resolve(&doc, p).clone())
            .find(|p| p["name"] == name)
            .unwrap()
    };
    let numbers = [
        "0", "1", "7", BIG, TOO_BIG, "01", "+1", "-1", "", "1.0", "1e3", "%31", "%201",
    ];
    for name in ["after", "limit"] {
        let p = param(&pull_params, name);
        for x in numbers {
            let path = format!("/v1/envelopes?{name}={x}");
            let ok = param_valid(&doc, &p, x);
            let (s, out) = env.signed(&env.device, "GET", &path, vec![]).await;
            v.check(&path, ok, s, &[400], &out);
            if ok {
                assert_eq!(s, 200, "{path}: {out}");
            }
        }
    }
    for (name, good) in [
        ("x-amanat-device", dev_id.clone()),
        ("x-amanat-nonce", amanat_protocol::new_nonce().unwrap()),
        ("x-amanat-timestamp", relay::now_ms().to_string()),
    ] {
        let p = param(&pull_params, name);
        let mut values = vec![
            good.clone(),
            good.to_uppercase(),
            format!("0{good}"),
            format!("+{good}"),
            good[1..].to_string(),
            "".into(),
        ];
        if name == "x-amanat-nonce" {
            values.extend([
                "a".repeat(15),
                "a".repeat(16),
                "a".repeat(64),
                "a".repeat(65),
            ]);
        }
        for x in values {
            let mut h = env.sign(&env.device, "GET", "/v1/envelopes", b"");
            let i = h.iter().position(|(k, _)| *k == name).unwrap();
            h[i].1 = x.clone();
            let ok = param_valid(&doc, &p, &x);
            let (s, out) = env.send("GET", "/v1/envelopes", h, vec![]).await;
            // A valid header that differs from what was signed fails the signature, not the format.
            v.check(&format!("{name}: {x}"), ok, s, &[400], &out);
        }
    }
    let upload = doc["paths"]["/v1/blobs/{sha256}"].clone();
    let sha_p = resolve(&doc, &upload["parameters"][0]).clone();
    let offset_p = param(upload["put"]["parameters"].as_array().unwrap(), "offset");
    let sha = amanat_protocol::sha256_hex(b"x");
    for x in [
        sha.clone(),
        sha.to_uppercase(),
        sha[1..].to_string(),
        format!("{sha}0"),
        "XYZ".into(),
    ] {
        let path = format!("/v1/blobs/{x}/status");
        let ok = param_valid(&doc, &sha_p, &x);
        let (s, out) = env.signed(&env.device, "GET", &path, vec![]).await;
        v.check(&path, ok, s, &[400], &out);
    }
    for x in numbers {
        let path = format!("/v1/blobs/{sha}?offset={x}");
        let ok = param_valid(&doc, &offset_p, x);
        let (s, out) = env.signed(&env.device, "PUT", &path, b"x".to_vec()).await;
        // A valid offset other than 0 is a 409 offset_mismatch: not a format refusal.
        v.check(&path, ok, s, &[400], &out);
    }
    assert!(
        v.0.is_empty(),
        "document and relay disagree:\n{}",
        v.0.join("\n")
    );
}
