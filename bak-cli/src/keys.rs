//! The key options of the tools: what `bak-write` encrypts to, and the keys `bak-read` and
//! `bak-verify` open a set with. Secrets are read from files, never taken from the command
//! line, where other users and shell histories would see them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bak_core::keys::{Cipher, Encryption, Keys, SecretString};

/// `bak-write`'s encryption options.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EncryptArgs {
    /// Encrypt the set to this age X25519 recipient (age1..., as age-keygen prints it);
    /// repeatable.
    #[arg(long, value_name = "AGE_PUBLIC_KEY")]
    pub recipient: Vec<String>,
    /// Encrypt the set to the recipients of this file (age's recipients file: one age1... per
    /// line, # comments); repeatable.
    #[arg(long, value_name = "FILE")]
    pub recipient_file: Vec<PathBuf>,
    /// Encrypt the set to the passphrase in this file too (its first line; scrypt, as age -p).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Cipher of an encrypted set (default: aes-256-gcm on CPUs with AES instructions, else
    /// chacha20-poly1305).
    #[arg(long, value_name = "CIPHER", value_parser = parse_cipher)]
    pub cipher: Option<Cipher>,
}

fn parse_cipher(s: &str) -> Result<Cipher, String> {
    s.parse()
}

/// The keys options of `bak-read` and `bak-verify`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// An age identity file (as age-keygen writes it) for encrypted sets; repeatable.
    #[arg(short = 'i', long, value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// A file whose first line is the passphrase of an encrypted set; repeatable.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Vec<PathBuf>,
    /// A set's data key as `age -d` writes it from the set's key record (32 bytes;
    /// docs/FORMAT.md tells how); repeatable.
    #[arg(long, value_name = "FILE", hide_short_help = true)]
    pub data_key_file: Vec<PathBuf>,
}

fn read_secret(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        path.as_os_str() != "-",
        "{what}: give a file, not - (standard input carries the data)"
    );
    std::fs::read(path).with_context(|| format!("{}: cannot read the {what}", path.display()))
}

/// A passphrase file: its first line, without the line end.
fn passphrase(path: &Path) -> anyhow::Result<SecretString> {
    let bytes = read_secret(path, "passphrase file")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: the passphrase is not UTF-8", path.display()))?;
    let line = text.split('\n').next().unwrap_or("");
    let line = line.strip_suffix('\r').unwrap_or(line);
    anyhow::ensure!(
        !line.is_empty(),
        "{}: the passphrase file's first line is empty",
        path.display()
    );
    Ok(SecretString::from(line.to_string()))
}

fn text_file(path: &Path, what: &str) -> anyhow::Result<String> {
    String::from_utf8(read_secret(path, what)?)
        .map_err(|_| anyhow::anyhow!("{}: the {what} is not UTF-8 text", path.display()))
}

impl EncryptArgs {
    /// What the set is encrypted to; `None` when no recipient or passphrase was given.
    pub fn encryption(&self) -> anyhow::Result<Option<Encryption>> {
        let mut e = Encryption::new();
        for r in &self.recipient {
            e.add_recipient(r).context("--recipient")?;
        }
        for p in &self.recipient_file {
            let name = p.display().to_string();
            let text = text_file(p, "recipients file")?;
            e.add_recipients_file(&text, &name)?;
        }
        if let Some(p) = &self.passphrase_file {
            e.set_passphrase(passphrase(p)?)?;
        }
        if !e.is_set() {
            anyhow::ensure!(
                self.cipher.is_none(),
                "--cipher is for encrypted sets: give --recipient, --recipient-file or \
                 --passphrase-file"
            );
            return Ok(None);
        }
        if let Some(c) = self.cipher {
            e.set_cipher(c);
        }
        Ok(Some(e))
    }
}

impl KeyArgs {
    /// The keys given.
    pub fn keys(&self) -> anyhow::Result<Keys> {
        let mut k = Keys::new();
        for p in &self.identity {
            let text = text_file(p, "identity file")?;
            k.add_identity_file(&text, &p.display().to_string())?;
        }
        for p in &self.passphrase_file {
            k.add_passphrase(passphrase(p)?)?;
        }
        for p in &self.data_key_file {
            let b = read_secret(p, "data key file")?;
            k.add_data_key(&b, &p.display().to_string())?;
        }
        Ok(k)
    }
}
