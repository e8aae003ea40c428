//! The sealed manifest: what the store holds, authenticated as a set.
//!
//! Each value is sealed with its row's identity, so an altered or moved value fails to open. But a
//! row that is *missing* — deleted behind the vault's back, or hidden because a flipped byte in an
//! index page sends SQLite's search elsewhere — opens nothing and fails nothing: without more, a
//! list is silently shorter and a lookup silently empty.
//!
//! The manifest closes that gap. For every collection it keeps the number of records and the XOR of
//! a keyed hash (HMAC-SHA256 under the manifest subkey) of each record's (collection tag, id,
//! version); for every blind-index field, the number of entries and the XOR of the keyed hash of
//! each (field tag, token, record id). Every insert, update and delete changes it in the same
//! transaction. A list or a lookup recomputes the digest over the rows SQLite returned and compares:
//! a row missing, added, replaced by another version, or returned twice changes count or digest.
//! The hash is keyed, so whoever can write the file cannot compute which rows would give the same
//! XOR; the manifest is sealed (AEAD), so it cannot be edited either.
//!
//! What it cannot see: the whole database put back to an older copy together with its manifest
//! (docs/SECURITY.md).

use std::collections::BTreeMap;

use super::StoreError;

/// A 16-byte tag (collection tag, or blind-index field tag).
pub(super) type Tag = [u8; 16];

/// Number of elements and XOR of their keyed hashes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SetDigest {
    pub(super) count: u64,
    pub(super) digest: [u8; 32],
}

impl SetDigest {
    pub(super) fn add(&mut self, mac: &[u8; 32]) {
        self.count = self.count.wrapping_add(1);
        xor(&mut self.digest, mac);
    }

    /// Removes an element the caller found in the database. An empty set cannot lose one: the rows
    /// and the manifest disagree.
    pub(super) fn remove(&mut self, mac: &[u8; 32]) -> Result<(), StoreError> {
        self.count = self.count.checked_sub(1).ok_or(StoreError::Integrity)?;
        xor(&mut self.digest, mac);
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.count == 0 && self.digest == [0u8; 32]
    }
}

fn xor(acc: &mut [u8; 32], mac: &[u8; 32]) {
    for (a, m) in acc.iter_mut().zip(mac) {
        *a ^= m;
    }
}

/// The digests of one blind-index field, with the collection it indexes (so deleting a record
/// removes only its own collection's entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FieldSet {
    pub(super) collection: Tag,
    pub(super) set: SetDigest,
}

/// The decrypted manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Manifest {
    /// Collection tag → its records.
    pub(super) records: BTreeMap<Tag, SetDigest>,
    /// Field tag → its entries.
    pub(super) fields: BTreeMap<Tag, FieldSet>,
}

/// Format byte of the encoded manifest (inside the sealed value).
const FORMAT: u8 = 1;
const RECORD_LEN: usize = 16 + 8 + 32;
const FIELD_LEN: usize = 16 + 16 + 8 + 32;

/// Reads fixed-size pieces off an authenticated buffer; running short means a bug or a format this
/// version does not know, reported as an integrity failure.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let (head, rest) = self.0.split_at_checked(N).ok_or(StoreError::Integrity)?;
        self.0 = rest;
        head.try_into().map_err(|_| StoreError::Integrity)
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_be_bytes(self.take::<8>()?))
    }
}

impl Manifest {
    /// The records of collection `tag` (empty if it never had any).
    pub(super) fn records(&self, tag: &Tag) -> SetDigest {
        self.records.get(tag).copied().unwrap_or_default()
    }

    /// The entries of field `field` (empty if it never had any).
    pub(super) fn field(&self, field: &Tag) -> SetDigest {
        self.fields.get(field).map(|f| f.set).unwrap_or_default()
    }

    /// The fields that index collection `collection`.
    pub(super) fn fields_of(&self, collection: &Tag) -> Vec<Tag> {
        self.fields
            .iter()
            .filter(|(_, f)| f.collection == *collection)
            .map(|(tag, _)| *tag)
            .collect()
    }

    pub(super) fn records_mut(&mut self, tag: Tag) -> &mut SetDigest {
        self.records.entry(tag).or_default()
    }

    pub(super) fn field_mut(&mut self, field: Tag, collection: Tag) -> &mut SetDigest {
        &mut self
            .fields
            .entry(field)
            .or_insert(FieldSet {
                collection,
                set: SetDigest::default(),
            })
            .set
    }

    /// The manifest's bytes: format, then the non-empty record sets sorted by tag, then the
    /// non-empty field sets sorted by tag (so the bytes depend on the content, not on history).
    ///
    /// ```text
    /// 0x01 ‖ n:u32 ‖ n × (collection tag:16 ‖ count:u64 ‖ digest:32)
    ///      ‖ m:u32 ‖ m × (field tag:16 ‖ collection tag:16 ‖ count:u64 ‖ digest:32)
    /// ```
    pub(super) fn encode(&self) -> Vec<u8> {
        let records: Vec<_> = self.records.iter().filter(|(_, s)| !s.is_empty()).collect();
        let fields: Vec<_> = self
            .fields
            .iter()
            .filter(|(_, f)| !f.set.is_empty())
            .collect();
        let mut out = Vec::with_capacity(9 + records.len() * RECORD_LEN + fields.len() * FIELD_LEN);
        out.push(FORMAT);
        out.extend_from_slice(&(records.len() as u32).to_be_bytes());
        for (tag, set) in records {
            out.extend_from_slice(tag);
            out.extend_from_slice(&set.count.to_be_bytes());
            out.extend_from_slice(&set.digest);
        }
        out.extend_from_slice(&(fields.len() as u32).to_be_bytes());
        for (tag, field) in fields {
            out.extend_from_slice(tag);
            out.extend_from_slice(&field.collection);
            out.extend_from_slice(&field.set.count.to_be_bytes());
            out.extend_from_slice(&field.set.digest);
        }
        out
    }

    /// Parses what [`Manifest::encode`] made. The bytes were authenticated before, so anything
    /// unexpected is reported as an integrity failure.
    pub(super) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let mut r = Reader(bytes);
        if r.take::<1>()? != [FORMAT] {
            return Err(StoreError::Integrity);
        }
        let mut manifest = Manifest::default();
        for _ in 0..u32::from_be_bytes(r.take::<4>()?) {
            let tag = r.take::<16>()?;
            let count = r.u64()?;
            let digest = r.take::<32>()?;
            manifest.records.insert(tag, SetDigest { count, digest });
        }
        for _ in 0..u32::from_be_bytes(r.take::<4>()?) {
            let tag = r.take::<16>()?;
            let collection = r.take::<16>()?;
            let count = r.u64()?;
            let digest = r.take::<32>()?;
            manifest.fields.insert(
                tag,
                FieldSet {
                    collection,
                    set: SetDigest { count, digest },
                },
            );
        }
        if !r.0.is_empty() {
            return Err(StoreError::Integrity);
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_order_free_and_removal_undoes_addition() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let mut x = SetDigest::default();
        x.add(&a);
        x.add(&b);
        let mut y = SetDigest::default();
        y.add(&b);
        y.add(&a);
        assert_eq!(x, y);
        x.remove(&a).unwrap();
        let mut only_b = SetDigest::default();
        only_b.add(&b);
        assert_eq!(x, only_b);
        x.remove(&b).unwrap();
        assert!(x.is_empty());
        assert!(matches!(x.remove(&a), Err(StoreError::Integrity)));
    }

    #[test]
    fn encoding_round_trips_and_leaves_out_empty_sets() {
        let mut m = Manifest::default();
        m.records_mut([1; 16]).add(&[7; 32]);
        m.field_mut([2; 16], [1; 16]).add(&[8; 32]);
        *m.records_mut([3; 16]) = SetDigest::default();
        let bytes = m.encode();
        assert_eq!(bytes.len(), 9 + RECORD_LEN + FIELD_LEN);
        let back = Manifest::decode(&bytes).unwrap();
        assert_eq!(back.records.len(), 1);
        assert_eq!(back.records(&[1; 16]), m.records(&[1; 16]));
        assert_eq!(back.field(&[2; 16]), m.field(&[2; 16]));
        assert_eq!(back.fields_of(&[1; 16]), vec![[2; 16]]);
        assert!(Manifest::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Manifest::decode(&longer).is_err());
        let mut newer = bytes;
        newer[0] = 2;
        assert!(Manifest::decode(&newer).is_err());
    }
}
