//! `amanat org backup` / `org restore`: the organisation's secret keys split into Shamir shares
//! for trustees, so losing the key directory (a fire, a seizure, a forgotten passphrase) does not
//! lose every survivor's record, and no single trustee can read anything.
//!
//! What is shared is one *bundle*: `org.pub` (public), the signing key (PKCS#8) and every group
//! identity, as JSON. It is split byte by byte over GF(256) by `vsss-rs` (audited); any
//! `threshold` shares rebuild it, fewer reveal nothing about it. Each share is a short text file a
//! trustee can print:
//!
//! ```text
//! AMANAT ORGANISATION KEY SHARE — keep it secret; any 3 of 5 shares rebuild the organisation's keys
//! organisation: <fingerprint>
//! share: 2 of 5
//! threshold: 3
//! backup: <random id of this backup run>
//! digest: <SHA-256 of the bundle, hex>
//! data: <base64 of the share>
//! ```
//!
//! `backup` keeps shares of two backup runs from mixing; after combining, the bundle's hash must
//! equal `digest` — so too few shares, a damaged share or a forged one is refused instead of
//! producing wrong keys. (The hash of a bundle of random 256-bit keys reveals
//! nothing usable about them.) `restore` writes a fresh organisation directory under a new
//! passphrase and checks every key against `org.pub` before writing.

use crate::org::{self, ORG_PUB_FILE, SIGNING_KEY_FILE};
use age::secrecy::{ExposeSecret, SecretString};
use amanat_protocol::{OrgPublic, RECIPIENT_GROUPS};
use base64::Engine as _;
use ring::signature::KeyPair;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use zeroize::{Zeroize, Zeroizing};

const HEADER: &str = "AMANAT ORGANISATION KEY SHARE";

/// The secrets shared. Zeroized on drop; never printed.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bundle {
    version: u32,
    org_pub: String,
    signing_pkcs8: String,
    /// The key in force per group.
    groups: BTreeMap<String, String>,
    /// Earlier keys of rotated groups, oldest first (needed to read what was sent to them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    archived: BTreeMap<String, Vec<String>>,
    /// The signed `recipients` order of the last rotation (public), as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recipients_order: Option<String>,
}

impl Drop for Bundle {
    fn drop(&mut self) {
        self.signing_pkcs8.zeroize();
        for v in self.groups.values_mut() {
            v.zeroize();
        }
        for v in self.archived.values_mut().flatten() {
            v.zeroize();
        }
    }
}

/// One share, as written to and read from its text file. `Debug` omits the share's bytes.
#[derive(Clone, PartialEq, Eq)]
struct Share {
    fingerprint: String,
    index: u8,
    count: u8,
    threshold: u8,
    backup: String,
    digest: String,
    data: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("fingerprint", &self.fingerprint)
            .field("index", &self.index)
            .field("count", &self.count)
            .field("threshold", &self.threshold)
            .field("backup", &self.backup)
            .field("data", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Share {
    fn to_text(&self) -> String {
        format!(
            "{HEADER} — keep it secret; any {t} of {n} shares rebuild the organisation's keys\n\
             organisation: {fp}\nshare: {i} of {n}\nthreshold: {t}\nbackup: {b}\ndigest: {h}\n\
             data: {d}\n",
            t = self.threshold,
            n = self.count,
            fp = self.fingerprint,
            i = self.index,
            b = self.backup,
            h = self.digest,
            d = base64::engine::general_purpose::STANDARD.encode(&*self.data),
        )
    }

    fn parse(text: &str) -> Result<Share, &'static str> {
        let mut lines = text.lines();
        if !lines.next().is_some_and(|l| l.starts_with(HEADER)) {
            return Err("not an Amanat key share");
        }
        let mut fields = BTreeMap::new();
        for line in lines {
            if let Some((k, v)) = line.split_once(": ") {
                fields.insert(k.trim(), v.trim());
            }
        }
        let get = |k: &str| fields.get(k).copied().ok_or("a line is missing");
        let (index, count) = get("share")?
            .split_once(" of ")
            .ok_or("malformed share line")?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(get("data")?)
            .map_err(|_| "malformed data line")?;
        let share = Share {
            fingerprint: get("organisation")?.to_owned(),
            index: index.parse().map_err(|_| "malformed share line")?,
            count: count.parse().map_err(|_| "malformed share line")?,
            threshold: get("threshold")?
                .parse()
                .map_err(|_| "malformed threshold")?,
            backup: get("backup")?.to_owned(),
            digest: get("digest")?.to_owned(),
            data: Zeroizing::new(data),
        };
        if share.data.len() < 2 {
            return Err("malformed data line");
        }
        Ok(share)
    }
}

fn digest_hex(bytes: &[u8]) -> String {
    amanat_protocol::sha256_hex(bytes)
}

/// Splits the organisation's secrets in `dir` into `count` shares, any `threshold` of which
/// rebuild them; returns the share texts (share 1 first).
pub fn backup(
    dir: &Path,
    pass: &SecretString,
    count: u8,
    threshold: u8,
) -> Result<Vec<String>, String> {
    if threshold < 2 || threshold > count {
        return Err("the threshold must be at least 2 and at most the number of shares".into());
    }
    let org_json = fs::read_to_string(dir.join(ORG_PUB_FILE))
        .map_err(|e| format!("cannot read org.pub: {}", e.kind()))?;
    let org = OrgPublic::from_json(org_json.as_bytes()).map_err(|e| e.to_string())?;
    let signing = Zeroizing::new(org::decrypt(
        pass,
        &fs::read(dir.join(SIGNING_KEY_FILE))
            .map_err(|e| format!("cannot read the signing key: {}", e.kind()))?,
    )?);
    let mut groups = BTreeMap::new();
    let mut archived = BTreeMap::new();
    for g in RECIPIENT_GROUPS {
        groups.insert(
            g.to_string(),
            org::group_identity(dir, pass, g)?
                .expose_secret()
                .to_owned(),
        );
        let old: Vec<String> = org::archived_identities(dir, pass, g)?
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect();
        if !old.is_empty() {
            archived.insert(g.to_string(), old);
        }
    }
    let recipients_order = org::recipients_order(dir)?
        .map(|o| serde_json::to_string(&o))
        .transpose()
        .map_err(|e| e.to_string())?;
    let bundle = Bundle {
        version: 1,
        org_pub: org_json,
        signing_pkcs8: amanat_protocol::to_hex(&signing),
        groups,
        archived,
        recipients_order,
    };
    let bytes = Zeroizing::new(serde_json::to_vec(&bundle).map_err(|e| e.to_string())?);
    let digest = digest_hex(&bytes);
    let system = ring::rand::SystemRandom::new();
    let mut seed = Zeroizing::new([0u8; 32]);
    let mut run = [0u8; 8];
    ring::rand::SecureRandom::fill(&system, &mut *seed)
        .and_then(|()| ring::rand::SecureRandom::fill(&system, &mut run))
        .map_err(|_| "no system randomness".to_owned())?;
    let backup = amanat_protocol::to_hex(&run);
    let rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed(*seed);
    let shares = vsss_rs::Gf256::split_bytes(threshold.into(), count.into(), &*bytes, rng)
        .map_err(|e| format!("cannot split the keys: {e:?}"))?;
    Ok(shares
        .into_iter()
        .enumerate()
        .map(|(i, data)| {
            Share {
                fingerprint: org.fingerprint.clone(),
                index: (i + 1) as u8,
                count,
                threshold,
                backup: backup.clone(),
                digest: digest.clone(),
                data: Zeroizing::new(data),
            }
            .to_text()
        })
        .collect())
}

/// Rebuilds the organisation's keys from share texts into a new directory `to`, encrypted
/// under `new_pass`. Refuses (writing nothing) shares of different backups, repeated shares,
/// too few shares, and any share that does not combine into the named bundle.
pub fn restore(
    shares: &[String],
    to: &Path,
    new_pass: &SecretString,
    scrypt_log_n: Option<u8>,
) -> Result<OrgPublic, String> {
    let parsed = shares
        .iter()
        .enumerate()
        .map(|(i, t)| Share::parse(t).map_err(|e| format!("share file {}: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let first = parsed.first().ok_or("no shares given")?;
    if parsed.iter().any(|s| {
        s.backup != first.backup
            || s.digest != first.digest
            || s.fingerprint != first.fingerprint
            || s.threshold != first.threshold
    }) {
        return Err("the shares come from different backups".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    if !parsed.iter().all(|s| seen.insert(s.data[0])) {
        return Err("the same share was given twice".into());
    }
    if parsed.len() < first.threshold as usize {
        return Err(format!(
            "{} shares given; this backup needs {}",
            parsed.len(),
            first.threshold
        ));
    }
    let data: Vec<Vec<u8>> = parsed.iter().map(|s| s.data.to_vec()).collect();
    let combined = vsss_rs::Gf256::combine_bytes(&data);
    for mut d in data {
        d.zeroize();
    }
    let bytes = Zeroizing::new(combined.map_err(|_| "the shares do not combine".to_owned())?);
    // Constant time is not needed: both values are public to whoever holds a share.
    if digest_hex(&bytes) != first.digest {
        return Err("the shares do not rebuild this backup (a damaged or forged share)".into());
    }
    let bundle: Bundle =
        serde_json::from_slice(&bytes).map_err(|_| "the rebuilt keys are malformed".to_owned())?;
    let org = OrgPublic::from_json(bundle.org_pub.as_bytes()).map_err(|e| e.to_string())?;
    let pkcs8 = Zeroizing::new(
        amanat_protocol::from_hex(&bundle.signing_pkcs8).ok_or("malformed signing key")?,
    );
    let key = amanat_protocol::ed25519_from_pkcs8(&pkcs8).map_err(|e| e.to_string())?;
    if amanat_protocol::to_hex(key.public_key().as_ref()) != org.signing_public_key {
        return Err("the rebuilt signing key does not match org.pub".into());
    }
    // The keys in force: `org.pub`'s, or those the signed order of the last rotation names.
    let mut in_force = org.groups.clone();
    let order = match &bundle.recipients_order {
        Some(json) => {
            let order: amanat_protocol::OrgOrder = serde_json::from_str(json)
                .map_err(|_| "the rebuilt rotation order is malformed".to_owned())?;
            let body: amanat_core::sync::orders::RecipientsBody = serde_json::from_str(&order.body)
                .map_err(|_| "the rebuilt rotation order is malformed".to_owned())?;
            if order.verify(&org).is_err() {
                return Err("the rebuilt rotation order is not signed by this organisation".into());
            }
            in_force.extend(body.groups);
            Some(order)
        }
        None => None,
    };
    for (g, secret) in &bundle.groups {
        let id = age::x25519::Identity::from_str(secret)
            .map_err(|_| format!("the rebuilt {g} identity is malformed"))?;
        if in_force.get(g) != Some(&id.to_public().to_string()) {
            return Err(format!("the rebuilt {g} identity does not match org.pub"));
        }
    }
    for (g, old) in &bundle.archived {
        if !RECIPIENT_GROUPS.contains(&g.as_str())
            || old
                .iter()
                .any(|s| age::x25519::Identity::from_str(s).is_err())
        {
            return Err(format!("an earlier {g} identity is malformed"));
        }
    }
    if to.join(ORG_PUB_FILE).exists() || to.join(SIGNING_KEY_FILE).exists() {
        return Err(format!("{} already holds an organisation", to.display()));
    }
    fs::create_dir_all(to.join("groups"))
        .map_err(|e| format!("cannot create directory: {}", e.kind()))?;
    for (g, secret) in &bundle.groups {
        org::write_new(
            &to.join("groups").join(format!("{g}.key.age")),
            &org::encrypt(new_pass, secret.as_bytes(), scrypt_log_n)?,
        )?;
    }
    for (g, old) in &bundle.archived {
        for (i, secret) in old.iter().enumerate() {
            org::write_new(
                &org::archived_path(to, g, i + 1),
                &org::encrypt(new_pass, secret.as_bytes(), scrypt_log_n)?,
            )?;
        }
    }
    if let Some(order) = order {
        let json = serde_json::to_vec_pretty(&order).map_err(|e| e.to_string())?;
        org::write_new(&to.join(org::RECIPIENTS_ORDER_FILE), &json)?;
    }
    org::write_new(
        &to.join(SIGNING_KEY_FILE),
        &org::encrypt(new_pass, &pkcs8, scrypt_log_n)?,
    )?;
    org::write_new(&to.join(ORG_PUB_FILE), bundle.org_pub.as_bytes())?;
    Ok(org)
}

/// `amanat org backup`: writes `share-<i>-of-<n>.txt` into `out` (created; files never
/// overwritten).
pub fn run_backup(
    dir: PathBuf,
    count: u8,
    threshold: u8,
    out: PathBuf,
    passphrase_file: Option<PathBuf>,
) -> Result<(), String> {
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let shares = backup(&dir, &pass, count, threshold)?;
    fs::create_dir_all(&out)
        .map_err(|e| format!("cannot create {}: {}", out.display(), e.kind()))?;
    for (i, text) in shares.iter().enumerate() {
        org::write_new(
            &out.join(format!("share-{}-of-{count}.txt", i + 1)),
            text.as_bytes(),
        )?;
    }
    println!(
        "{count} shares written to {}; any {threshold} rebuild the organisation's keys. Give \
         each to a different trustee, then delete them here.",
        out.display()
    );
    Ok(())
}

/// `amanat org restore`: rebuilds the keys into `to` under a new passphrase.
pub fn run_restore(
    files: Vec<PathBuf>,
    to: PathBuf,
    passphrase_file: Option<PathBuf>,
) -> Result<(), String> {
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let mut texts = Vec::new();
    for f in &files {
        texts.push(
            fs::read_to_string(f)
                .map_err(|e| format!("cannot read {}: {}", f.display(), e.kind()))?,
        );
    }
    let org = restore(&texts, &to, &pass, None)?;
    println!("organisation rebuilt in {}", to.display());
    println!("fingerprint {}", org.fingerprint);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use amanat_protocol::{DeviceRole, EnrollmentCode};

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn org_dir() -> (tempfile::TempDir, PathBuf, OrgPublic) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("org");
        let org = org::init(&dir, &pass("old passphrase"), Some(10)).unwrap();
        (tmp, dir, org)
    }

    #[test]
    fn after_rotations_the_shares_rebuild_every_key_a_group_had_and_the_signed_order() {
        let (tmp, dir, org) = org_dir();
        let p = pass("old passphrase");
        let first = org::group_identity(&dir, &p, "caseworkers").unwrap();
        let (_, second) = org::rotate_group(&dir, &p, "caseworkers", Some(10)).unwrap();
        let (order, third) = org::rotate_group(&dir, &p, "caseworkers", Some(10)).unwrap();
        let shares = backup(&dir, &p, 3, 2).unwrap();
        let to = tmp.path().join("restored");
        let back = restore(&shares[1..], &to, &pass("new passphrase"), Some(10)).unwrap();
        assert_eq!(back, org);
        let np = pass("new passphrase");
        assert_eq!(
            org::group_identity(&to, &np, "caseworkers")
                .unwrap()
                .expose_secret(),
            third.expose_secret()
        );
        let old: Vec<String> = org::archived_identities(&to, &np, "caseworkers")
            .unwrap()
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect();
        assert_eq!(
            old,
            vec![
                first.expose_secret().to_owned(),
                second.expose_secret().to_owned()
            ]
        );
        assert_eq!(org::recipients_order(&to).unwrap(), Some(order));
        // A rotation order forged into the rebuilt bundle would not verify: refused.
        let (_other_tmp, other_dir, _) = org_dir();
        let foreign = org::order(
            &other_dir,
            &p,
            amanat_core::sync::orders::KIND_RECIPIENTS,
            org::recipients_order(&dir).unwrap().unwrap().body,
        )
        .unwrap();
        std::fs::write(
            dir.join(org::RECIPIENTS_ORDER_FILE),
            serde_json::to_vec(&foreign).unwrap(),
        )
        .unwrap();
        let shares = backup(&dir, &p, 2, 2).unwrap();
        let err = restore(&shares, &tmp.path().join("forged"), &np, Some(10)).unwrap_err();
        assert!(err.contains("not signed by this organisation"), "{err}");
    }

    #[test]
    fn any_threshold_shares_rebuild_keys_that_sign_and_decrypt_like_the_originals() {
        let (tmp, dir, org) = org_dir();
        let shares = backup(&dir, &pass("old passphrase"), 5, 3).unwrap();
        assert_eq!(shares.len(), 5);
        // No share carries a key in clear.
        let research = org::group_identity(&dir, &pass("old passphrase"), "research").unwrap();
        for s in &shares {
            assert!(!s.contains(research.expose_secret()));
            assert!(s.contains(&org.fingerprint));
        }
        for (n, pick) in [[0usize, 2, 4], [1, 3, 4], [4, 1, 0]].iter().enumerate() {
            let to = tmp.path().join(format!("restored-{n}"));
            let chosen: Vec<String> = pick.iter().map(|i| shares[*i].clone()).collect();
            let back = restore(&chosen, &to, &pass("new passphrase"), Some(10)).unwrap();
            assert_eq!(back, org);
            // The rebuilt signing key issues codes the original org.pub verifies.
            let code =
                org::enroll_code(&to, &pass("new passphrase"), 60, DeviceRole::Field).unwrap();
            EnrollmentCode::verify(&code, &org).unwrap();
            // Every group identity is the original one, under the new passphrase only.
            for g in RECIPIENT_GROUPS {
                let a = org::group_identity(&dir, &pass("old passphrase"), g).unwrap();
                let b = org::group_identity(&to, &pass("new passphrase"), g).unwrap();
                assert_eq!(a.expose_secret(), b.expose_secret());
                assert!(org::group_identity(&to, &pass("old passphrase"), g).is_err());
            }
        }
        // All five work too.
        restore(
            &shares,
            &tmp.path().join("all"),
            &pass("new passphrase"),
            Some(10),
        )
        .unwrap();
    }

    #[test]
    fn too_few_repeated_mixed_damaged_or_forged_shares_are_refused_and_write_nothing() {
        let (tmp, dir, _) = org_dir();
        let shares = backup(&dir, &pass("old passphrase"), 5, 3).unwrap();
        let other = backup(&dir, &pass("old passphrase"), 5, 3).unwrap();
        let to = tmp.path().join("restored");
        let np = pass("new passphrase");
        let err = |s: &[String]| restore(s, &to, &np, Some(10)).unwrap_err();
        assert!(err(&shares[..2]).contains("needs 3"));
        assert!(err(&[shares[0].clone(), shares[0].clone(), shares[1].clone()]).contains("twice"));
        assert!(
            err(&[shares[0].clone(), shares[1].clone(), other[2].clone()])
                .contains("different backups")
        );
        // Two shares passed off as enough (the threshold line edited): they combine into
        // something, which is not the keys.
        let lowered: Vec<String> = shares[..2]
            .iter()
            .map(|s| s.replace("threshold: 3", "threshold: 2"))
            .collect();
        assert!(err(&lowered).contains("do not rebuild"));
        // One flipped byte in a share's data.
        let mut bad = Share::parse(&shares[2]).unwrap();
        let last = bad.data.len() - 1;
        bad.data[last] ^= 1;
        assert!(
            err(&[shares[0].clone(), shares[1].clone(), bad.to_text()]).contains("do not rebuild")
        );
        assert!(err(&["not a share".to_owned()]).contains("not an Amanat key share"));
        assert!(!to.exists(), "nothing written");
        // Never over an existing organisation.
        let e = restore(&shares[..3], &dir, &np, Some(10)).unwrap_err();
        assert!(e.contains("already holds"), "{e}");
        // Parameters.
        assert!(backup(&dir, &pass("old passphrase"), 3, 1).is_err());
        assert!(backup(&dir, &pass("old passphrase"), 2, 3).is_err());
        assert!(backup(&dir, &pass("wrong passphrase"), 5, 3)
            .unwrap_err()
            .contains("wrong passphrase"));
    }

    #[test]
    fn debug_of_a_share_never_shows_its_bytes() {
        let (_tmp, dir, _) = org_dir();
        let text = &backup(&dir, &pass("old passphrase"), 3, 2).unwrap()[0];
        let share = Share::parse(text).unwrap();
        let data = base64::engine::general_purpose::STANDARD.encode(&*share.data);
        let shown = format!("{share:?}");
        assert!(
            !shown.contains(&data) && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(
            !shown.contains(&format!("{:?}", &share.data[..4])),
            "{shown}"
        );
    }

    /// Fewer than `threshold` shares say nothing about the secret: over many splits, the bytes of
    /// two shares of a 3-of-5 split are spread evenly whatever the secret byte (chi-square over
    /// the 256 values of each, for the secrets 0x00 and 0xFF).
    #[test]
    fn two_shares_of_a_three_share_split_are_independent_of_the_secret() {
        let rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([7u8; 32]);
        let mut rng = rng;
        for secret in [0x00u8, 0xFF] {
            let mut counts = [[0u32; 256]; 2];
            let n = 25_600;
            for _ in 0..n {
                let s = vsss_rs::Gf256::split_bytes(3, 5, [secret], &mut rng).unwrap();
                counts[0][s[0][1] as usize] += 1;
                counts[1][s[1][1] as usize] += 1;
            }
            for c in counts {
                let expected = n as f64 / 256.0;
                let chi2: f64 = c
                    .iter()
                    .map(|&o| (o as f64 - expected).powi(2) / expected)
                    .sum();
                // 255 degrees of freedom: mean 255, sd ≈ 22.6; 400 is > 6 sd.
                assert!(chi2 < 400.0, "secret {secret:#04x}: chi² {chi2}");
            }
        }
    }
}
