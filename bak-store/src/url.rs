//! Device names that are URLs: `s3://BUCKET/KEY`, `az://CONTAINER/PATH`, `gs://BUCKET/KEY`.
//! A URL's query (an Azure SAS token) is a secret: it is kept for the client and never shown.

use std::path::Path;

/// The object stores a device URL may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Amazon S3 and the stores that speak its protocol (MinIO, Ceph RGW, Garage, R2, ...).
    S3,
    /// Azure Blob Storage (Azurite too).
    Azure,
    /// Google Cloud Storage.
    Gcs,
}

impl Scheme {
    /// The scheme as written in URLs.
    pub fn prefix(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Azure => "az",
            Scheme::Gcs => "gs",
        }
    }
}

/// A device URL, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl {
    /// Which store.
    pub scheme: Scheme,
    /// The bucket (S3, GCS) or container (Azure).
    pub bucket: String,
    /// The object's key inside it.
    pub key: String,
    /// The query, when the URL had one (an Azure SAS token): a secret, never shown.
    query: Option<String>,
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

const SCHEMES: &[(&str, Scheme)] = &[
    ("s3://", Scheme::S3),
    ("az://", Scheme::Azure),
    ("azure://", Scheme::Azure),
    ("gs://", Scheme::Gcs),
];

/// True when a device name is an object-store URL (`s3://`, `az://`, `azure://`, `gs://`).
pub fn is_url(name: &Path) -> bool {
    name.to_str()
        .is_some_and(|s| SCHEMES.iter().any(|(p, _)| s.starts_with(p)))
}

/// A device name without the query of a URL (where a SAS token or a signature lives), for
/// messages; any other name as it is.
pub fn redact(name: &str) -> String {
    match name.find('?') {
        Some(i) if SCHEMES.iter().any(|(p, _)| name.starts_with(p)) => name[..i].to_string(),
        _ => name.to_string(),
    }
}

impl StoreUrl {
    /// Parse a device URL. The message of an `Err` names the URL without its query.
    pub fn parse(s: &str) -> Result<StoreUrl, String> {
        let shown = redact(s);
        let Some((prefix, scheme)) = SCHEMES.iter().find(|(p, _)| s.starts_with(p)) else {
            return Err(format!(
                "{shown}: not an object-store URL (s3://, az://, gs://)"
            ));
        };
        let rest = &s[prefix.len()..];
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q.to_string())),
            None => (rest, None),
        };
        let Some((bucket, key)) = rest.split_once('/') else {
            return Err(format!(
                "{shown}: no object key after the bucket (use {}BUCKET/KEY)",
                prefix
            ));
        };
        if bucket.is_empty() {
            return Err(format!("{shown}: no bucket or container name"));
        }
        if key.is_empty() || key.ends_with('/') {
            return Err(format!(
                "{shown}: names a folder, not an object (give BUCKET/KEY with a file name)"
            ));
        }
        if key
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(format!(
                "{shown}: empty, `.` or `..` parts in the key are not taken"
            ));
        }
        if query.is_some() && *scheme != Scheme::Azure {
            return Err(format!(
                "{shown}: a query in an {}:// URL is not used; credentials come from the \
                 environment (AWS_ACCESS_KEY_ID, ...); give the URL without `?...`",
                scheme.prefix()
            ));
        }
        Ok(StoreUrl {
            scheme: *scheme,
            bucket: bucket.to_string(),
            key: key.to_string(),
            query: query.filter(|q| !q.is_empty()),
        })
    }

    /// The URL as shown in messages and listings: without its query.
    pub fn shown(&self) -> String {
        format!("{}://{}/{}", self.scheme.prefix(), self.bucket, self.key)
    }

    /// The query (a SAS token), for the client only.
    pub(crate) fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The same bucket and query with another key (another volume of a family).
    pub fn with_key(&self, key: impl Into<String>) -> StoreUrl {
        StoreUrl {
            key: key.into(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_never_show_their_query() {
        let u = StoreUrl::parse("s3://bkt/dir/db.bak").unwrap();
        assert_eq!(
            (u.scheme, u.bucket.as_str(), u.key.as_str()),
            (Scheme::S3, "bkt", "dir/db.bak")
        );
        assert_eq!(u.shown(), "s3://bkt/dir/db.bak");
        let a = StoreUrl::parse("az://c/x.bak?sv=2020&sig=SECRET").unwrap();
        assert_eq!(a.shown(), "az://c/x.bak");
        assert!(!format!("{a:?} {a}").contains("SECRET"));
        assert_eq!(a.query(), Some("sv=2020&sig=SECRET"));
        for bad in [
            "s3://bkt",
            "s3://bkt/",
            "s3:///k",
            "s3://b/a//c",
            "s3://b/../k",
            "gs://b/d/",
        ] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
        let e = StoreUrl::parse("s3://b/k?X-Amz-Signature=SECRET").unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(is_url(Path::new("gs://b/k")) && !is_url(Path::new("./s3:/x")));
        assert_eq!(redact("az://c/k?sig=S"), "az://c/k");
        assert_eq!(redact("a?b"), "a?b");
    }
}
