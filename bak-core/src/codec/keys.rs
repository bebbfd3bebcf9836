//! Who can open an encrypted set: the data key wrapped in age's format for X25519 recipients
//! and for a passphrase (scrypt), one age file per key record, and the keys a reader brings
//! (age identities, passphrases, data keys unwrapped by hand with the `age` tool). The `age`
//! crate does the wrapping, so the stock `age` CLI unwraps what bak writes (docs/FORMAT.md,
//! "Key records").
//!
//! Secrets come in as text read from files by the caller; nothing here prints one, and every
//! `Debug` shows fingerprints only.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use age::secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::seal::{Cipher, SetKeys, DATA_KEY_LEN, MAC_LEN};
use crate::bytes::{hex, Guid, KeyKind, KeyRecord};
use crate::error::{Error, Location, Refusal, Result};

/// The fingerprint of an X25519 recipient: the first 8 bytes of the SHA-256 of its `age1...`
/// string. `printf %s age1... | sha256sum | cut -c1-16` gives it in hex.
pub fn recipient_fingerprint(recipient: &str) -> [u8; 8] {
    let d = ring::digest::digest(&ring::digest::SHA256, recipient.as_bytes());
    let mut f = [0u8; 8];
    f.copy_from_slice(&d.as_ref()[..8]);
    f
}

/// How a fingerprint is shown: `x25519:` and 16 hex digits.
pub fn show_fingerprint(f: &[u8; 8]) -> String {
    format!("x25519:{}", hex(f))
}

/// What a new set is encrypted to: X25519 recipients, a passphrase, or both; and the cipher.
#[derive(Clone, Default)]
pub struct Encryption {
    recipients: Vec<age::x25519::Recipient>,
    passphrase: Option<SecretString>,
    cipher: Option<Cipher>,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption")
            .field("recipients", &self.fingerprints())
            .field("passphrase", &self.passphrase.is_some())
            .field("cipher", &self.cipher)
            .finish()
    }
}

fn usage(what: String) -> Error {
    Error::refused(Refusal::Usage, what)
}

impl Encryption {
    /// Nothing yet: add recipients or a passphrase.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one X25519 recipient (`age1...`).
    pub fn add_recipient(&mut self, s: &str) -> Result<()> {
        let s = s.trim();
        let r = age::x25519::Recipient::from_str(s).map_err(|e| {
            usage(format!(
                "{s:?} is not an age X25519 recipient (age1...): {e}; ssh and plugin \
                 recipients are not supported"
            ))
        })?;
        if !self
            .recipients
            .iter()
            .any(|x| x.to_string() == r.to_string())
        {
            self.recipients.push(r);
        }
        Ok(())
    }

    /// Add the recipients of a recipients file in age's format (`name` for messages): one
    /// `age1...` per line; blank lines and lines starting with `#` are passed over.
    pub fn add_recipients_file(&mut self, text: &str, name: &str) -> Result<()> {
        let before = self.recipients.len();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            self.add_recipient(line)
                .map_err(|e| usage(format!("{name}, line {}: {}", i + 1, refusal_text(&e))))?;
        }
        if self.recipients.len() == before && !text.lines().any(|l| l.trim().starts_with("age1")) {
            return Err(usage(format!("{name} holds no recipient")));
        }
        Ok(())
    }

    /// Encrypt to a passphrase too (scrypt, as `age -p` does). One passphrase at most.
    pub fn set_passphrase(&mut self, p: SecretString) -> Result<()> {
        if p.expose_secret().is_empty() {
            return Err(usage("the passphrase is empty".into()));
        }
        if self.passphrase.is_some() {
            return Err(usage("give one passphrase".into()));
        }
        self.passphrase = Some(p);
        Ok(())
    }

    /// Use this cipher instead of the one for this CPU.
    pub fn set_cipher(&mut self, c: Cipher) {
        self.cipher = Some(c);
    }

    /// The cipher the set will use.
    pub fn cipher(&self) -> Cipher {
        self.cipher.unwrap_or_else(Cipher::for_this_cpu)
    }

    /// True when there is someone to encrypt to.
    pub fn is_set(&self) -> bool {
        !self.recipients.is_empty() || self.passphrase.is_some()
    }

    /// The recipients' fingerprints.
    pub fn fingerprints(&self) -> Vec<String> {
        self.recipients
            .iter()
            .map(|r| show_fingerprint(&recipient_fingerprint(&r.to_string())))
            .collect()
    }

    /// The data key wrapped for each kind of key: one age file for the recipients, one for
    /// the passphrase (age allows a passphrase only alone in a file).
    pub(crate) fn wrap(&self, data_key: &[u8; DATA_KEY_LEN]) -> Result<Vec<Wrapped>> {
        let mut out = Vec::new();
        if !self.recipients.is_empty() {
            let rs: Vec<&dyn age::Recipient> = self
                .recipients
                .iter()
                .map(|r| r as &dyn age::Recipient)
                .collect();
            let e = age::Encryptor::with_recipients(rs.into_iter()).map_err(age_internal)?;
            out.push(Wrapped {
                kind: KeyKind::X25519,
                fingerprints: self
                    .recipients
                    .iter()
                    .map(|r| recipient_fingerprint(&r.to_string()))
                    .collect(),
                armored: armor(e, data_key)?,
            });
        }
        if let Some(p) = &self.passphrase {
            let e = age::Encryptor::with_user_passphrase(p.clone());
            out.push(Wrapped {
                kind: KeyKind::Passphrase,
                fingerprints: Vec::new(),
                armored: armor(e, data_key)?,
            });
        }
        Ok(out)
    }
}

fn refusal_text(e: &Error) -> String {
    match e {
        Error::Refused { what, .. } => what.clone(),
        other => other.to_string(),
    }
}

fn age_internal(e: impl std::fmt::Display) -> Error {
    Error::Internal {
        what: "age could not wrap the data key".into(),
        detail: Some(e.to_string()),
    }
}

fn armor(e: age::Encryptor, data_key: &[u8; DATA_KEY_LEN]) -> Result<String> {
    let mut buf = Vec::new();
    let a = age::armor::ArmoredWriter::wrap_output(&mut buf, age::armor::Format::AsciiArmor)
        .map_err(age_internal)?;
    let mut w = e.wrap_output(a).map_err(age_internal)?;
    w.write_all(data_key).map_err(age_internal)?;
    w.finish().and_then(|a| a.finish()).map_err(age_internal)?;
    String::from_utf8(buf).map_err(age_internal)
}

/// One wrapping of the data key, for a key record.
pub(crate) struct Wrapped {
    pub kind: KeyKind,
    pub fingerprints: Vec<[u8; 8]>,
    /// The age file in age's ASCII armor.
    pub armored: String,
}

/// The keys a reader was given: age identities (X25519, as `age-keygen` writes them),
/// passphrases, and data keys (32 bytes, as `age -d` gives them from a key record).
#[derive(Clone, Default)]
pub struct Keys {
    identities: Vec<(age::x25519::Identity, [u8; 8])>,
    passphrases: Vec<SecretString>,
    data_keys: Vec<Zeroizing<[u8; DATA_KEY_LEN]>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Keys {
    /// No key.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no key was given.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty() && self.passphrases.is_empty() && self.data_keys.is_empty()
    }

    /// Add the identities of an identity file (`name` for messages): `AGE-SECRET-KEY-1...`
    /// lines; blank lines and lines starting with `#` are passed over. A line that is not an
    /// identity is refused by its number, never by its text.
    pub fn add_identity_file(&mut self, text: &str, name: &str) -> Result<()> {
        let before = self.identities.len();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = age::x25519::Identity::from_str(line).map_err(|_| {
                usage(format!(
                    "{name}, line {}: not an age X25519 identity (AGE-SECRET-KEY-1...); \
                     plugin identities are not supported",
                    i + 1
                ))
            })?;
            let fp = recipient_fingerprint(&id.to_public().to_string());
            self.identities.push((id, fp));
        }
        if self.identities.len() == before {
            return Err(usage(format!("{name} holds no identity")));
        }
        Ok(())
    }

    /// Add a passphrase.
    pub fn add_passphrase(&mut self, p: SecretString) -> Result<()> {
        if p.expose_secret().is_empty() {
            return Err(usage("the passphrase is empty".into()));
        }
        self.passphrases.push(p);
        Ok(())
    }

    /// Add a data key as `age -d` writes it from a key record: exactly 32 bytes.
    pub fn add_data_key(&mut self, bytes: &[u8], name: &str) -> Result<()> {
        let k: [u8; DATA_KEY_LEN] = bytes.try_into().map_err(|_| {
            usage(format!(
                "{name} holds {} bytes; a data key is {DATA_KEY_LEN} bytes, as `age -d` \
                 writes it from a key record",
                bytes.len()
            ))
        })?;
        self.data_keys.push(Zeroizing::new(k));
        Ok(())
    }

    /// The fingerprints of the identities given.
    pub fn fingerprints(&self) -> Vec<String> {
        self.identities
            .iter()
            .map(|(_, f)| show_fingerprint(f))
            .collect()
    }

    fn describe(&self) -> String {
        if self.is_empty() {
            return "no key was given".into();
        }
        let mut parts = Vec::new();
        if !self.identities.is_empty() {
            parts.push(format!("identities {}", self.fingerprints().join(", ")));
        }
        if !self.passphrases.is_empty() {
            parts.push(plural(self.passphrases.len(), "passphrase"));
        }
        if !self.data_keys.is_empty() {
            parts.push(plural(self.data_keys.len(), "data key"));
        }
        format!("given: {}", parts.join("; "))
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// What opens a set, in words: its key records' recipients and passphrase.
pub(crate) fn needs(records: &[KeyRecord]) -> String {
    let mut fps = Vec::new();
    let mut pass = false;
    for r in records {
        match r.kind {
            KeyKind::X25519 => fps.extend(r.fingerprints.iter().map(show_fingerprint)),
            KeyKind::Passphrase => pass = true,
        }
    }
    let mut parts = Vec::new();
    if !fps.is_empty() {
        parts.push(format!(
            "the age identity (--identity) of recipient {}",
            fps.join(" or ")
        ));
    }
    if pass {
        parts.push("its passphrase (--passphrase-file)".into());
    }
    parts.join(", or ")
}

/// The keys of a reader, with the data keys found so far: a set's key records are the same on
/// every family, and an scrypt unwrap costs a second, so each is unwrapped once.
pub(crate) struct KeyRing {
    keys: Keys,
    opened: Mutex<HashMap<Vec<u8>, Zeroizing<[u8; DATA_KEY_LEN]>>>,
}

/// What the key records of a set, and the keys given, come to.
pub(crate) enum Opening {
    /// The set's keys.
    Opened(Arc<SetKeys>),
    /// No key given opens it: not damage.
    NoKey(Error),
}

impl KeyRing {
    pub fn new(keys: Keys) -> Self {
        KeyRing {
            keys,
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// Open a set from its key records (already parsed and CRC-checked) and check every
    /// record's MAC over the set header and leading config bodies. `Err` is damage: a MAC
    /// that does not hold, a record that names an identity given as a recipient but does not
    /// open with it, an age file that is not what bak writes.
    pub fn open(
        &self,
        cipher: Cipher,
        set_id: &Guid,
        records: &[KeyRecord],
        leading: (&[u8], &[u8]),
        at: &Location,
    ) -> Result<Opening> {
        let mut found: Option<Zeroizing<[u8; DATA_KEY_LEN]>> = None;
        for r in records {
            let known = self
                .opened
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(r.text.as_bytes())
                .cloned();
            if let Some(k) = known {
                found = Some(k);
                break;
            }
            if let Some(k) = self.unwrap_record(r, at)? {
                self.opened
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(r.text.as_bytes().to_vec(), k.clone());
                found = Some(k);
                break;
            }
        }
        // A data key given as it is: the right one makes the records' MACs hold.
        if found.is_none() {
            for k in &self.keys.data_keys {
                let keys = SetKeys::derive(cipher, k, set_id)?;
                if records
                    .iter()
                    .all(|r| key_record_mac_holds(&keys, r, leading))
                {
                    found = Some(k.clone());
                    break;
                }
            }
        }
        let Some(dk) = found else {
            return Ok(Opening::NoKey(Error::KeyNeeded {
                at: at.clone(),
                needs: needs(records),
                given: self.keys.describe(),
            }));
        };
        let keys = SetKeys::derive(cipher, &dk, set_id)?;
        for r in records {
            if !key_record_mac_holds(&keys, r, leading) {
                return Err(Error::corrupt(
                    at.clone(),
                    format!(
                        "key record {} of {}: its MAC over the set header, leading config and \
                         key record does not hold",
                        r.index + 1,
                        r.count
                    ),
                ));
            }
        }
        Ok(Opening::Opened(Arc::new(keys)))
    }

    /// The data key from one key record with the keys given, if one opens it.
    fn unwrap_record(
        &self,
        r: &KeyRecord,
        at: &Location,
    ) -> Result<Option<Zeroizing<[u8; DATA_KEY_LEN]>>> {
        let damaged = |what: String| {
            Error::corrupt(
                at.clone(),
                format!("key record {} of {}: {what}", r.index + 1, r.count),
            )
        };
        match r.kind {
            KeyKind::X25519 => {
                if self.keys.identities.is_empty() {
                    return Ok(None);
                }
                let ids: Vec<&dyn age::Identity> = self
                    .keys
                    .identities
                    .iter()
                    .map(|(i, _)| i as &dyn age::Identity)
                    .collect();
                let named = self
                    .keys
                    .identities
                    .iter()
                    .find(|(_, f)| r.fingerprints.contains(f));
                match decrypt(r.age_file(), ids.into_iter()) {
                    Ok(k) => Ok(Some(k)),
                    Err(age::DecryptError::NoMatchingKeys) => match named {
                        // The record names this identity as a recipient, and yet its stanza
                        // does not open with it.
                        Some((_, f)) => Err(damaged(format!(
                            "it names {} as a recipient, but no stanza opens with that \
                             identity",
                            show_fingerprint(f)
                        ))),
                        None => Ok(None),
                    },
                    Err(e) => Err(damaged(format!("the age file does not decrypt: {e}"))),
                }
            }
            KeyKind::Passphrase => {
                for p in &self.keys.passphrases {
                    let id = age::scrypt::Identity::new(p.clone());
                    match decrypt(r.age_file(), std::iter::once(&id as &dyn age::Identity)) {
                        Ok(k) => return Ok(Some(k)),
                        // A wrong passphrase fails the stanza's decryption: not damage (a
                        // damaged stanza cannot be told from it; the CRC has held).
                        Err(age::DecryptError::DecryptionFailed)
                        | Err(age::DecryptError::NoMatchingKeys) => {}
                        Err(e) => {
                            return Err(damaged(format!("the age file does not decrypt: {e}")))
                        }
                    }
                }
                Ok(None)
            }
        }
    }
}

/// The MAC of a key record: over the set header body, the leading config body and the key
/// record body before the MAC, each length-prefixed, under the metadata key.
pub(crate) fn key_record_mac(
    keys: &SetKeys,
    leading: (&[u8], &[u8]),
    signed: &[u8],
) -> [u8; MAC_LEN] {
    keys.mac(b"BKKR", &[leading.0, leading.1, signed])
}

fn key_record_mac_holds(keys: &SetKeys, r: &KeyRecord, leading: (&[u8], &[u8])) -> bool {
    keys.check_mac(b"BKKR", &[leading.0, leading.1, &r.signed_body()], &r.mac)
}

/// The MAC of a trailing config over its body before the MAC.
pub(crate) fn trailing_mac(keys: &SetKeys, signed: &[u8]) -> [u8; MAC_LEN] {
    keys.mac(b"BKTC", &[signed])
}

/// Whether a trailing config's MAC holds over its body before the MAC.
pub(crate) fn trailing_mac_holds(keys: &SetKeys, signed: &[u8], mac: &[u8]) -> bool {
    keys.check_mac(b"BKTC", &[signed], mac)
}

fn decrypt<'a>(
    armored: &str,
    ids: impl Iterator<Item = &'a dyn age::Identity>,
) -> std::result::Result<Zeroizing<[u8; DATA_KEY_LEN]>, age::DecryptError> {
    let reader = age::armor::ArmoredReader::new(armored.as_bytes());
    let d = age::Decryptor::new_buffered(std::io::BufReader::new(reader))?;
    let mut r = d.decrypt(ids)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(DATA_KEY_LEN + 1));
    r.by_ref()
        .take(DATA_KEY_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(age::DecryptError::from)?;
    let k: [u8; DATA_KEY_LEN] = buf[..].try_into().map_err(|_| {
        age::DecryptError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "it holds {} bytes, not a {DATA_KEY_LEN}-byte data key",
                buf.len()
            ),
        ))
    })?;
    Ok(Zeroizing::new(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "AGE-SECRET-KEY-1GQ9778VQXMMJVE8SK7J6VT8UJ4HDQAJUVSFCWCM02D8GEWQ72PVQ2Y5J33";

    #[test]
    fn recipients_and_identities_files_are_read_as_age_writes_them() {
        let id = age::x25519::Identity::from_str(ID).unwrap();
        let public = id.to_public().to_string();
        let mut e = Encryption::new();
        e.add_recipients_file(&format!("# a comment\n\n{public}\n"), "r.txt")
            .unwrap();
        assert_eq!(e.fingerprints().len(), 1);
        let err = e
            .add_recipients_file("age1nope\n", "r.txt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("r.txt, line 1"), "{err}");
        let mut k = Keys::new();
        let text = format!("# created: today\n# public key: {public}\n{ID}\n");
        k.add_identity_file(&text, "key.txt").unwrap();
        assert_eq!(k.fingerprints(), e.fingerprints());
        let err = k
            .add_identity_file("AGE-SECRET-KEY-1SECRETBITS\n", "k2")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("k2, line 1") && !err.contains("SECRETBITS"),
            "{err}"
        );
        assert!(format!("{k:?}").contains("x25519:") && !format!("{k:?}").contains("SECRET"));
    }

    #[test]
    fn a_wrapped_key_unwraps_with_the_identity_only() {
        let id = age::x25519::Identity::generate();
        let mut e = Encryption::new();
        e.add_recipient(&id.to_public().to_string()).unwrap();
        let dk = [9u8; 32];
        let w = e.wrap(&dk).unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0]
            .armored
            .starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        let got = decrypt(&w[0].armored, std::iter::once(&id as &dyn age::Identity)).unwrap();
        assert_eq!(*got, dk);
        let other = age::x25519::Identity::generate();
        assert!(matches!(
            decrypt(&w[0].armored, std::iter::once(&other as &dyn age::Identity)),
            Err(age::DecryptError::NoMatchingKeys)
        ));
    }
}
