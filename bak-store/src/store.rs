//! One object store client per device URL, built from the standard environment of its cloud,
//! and what its errors mean in words that name the URL and never a secret.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjPath;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};

use crate::url::{Scheme, StoreUrl};

/// An object store and its multipart API, for one bucket or container.
#[derive(Clone)]
pub(crate) struct Store {
    pub os: Arc<dyn ObjectStore>,
    pub mp: Arc<dyn MultipartStore>,
    /// The same, with a request timeout of at least [`COMPLETE_TIMEOUT`] s: completing an
    /// upload of a large object can take a store minutes (it joins the parts), and a retry
    /// sent while the first completion runs fails on a store that has consumed the parts.
    pub complete: Arc<dyn MultipartStore>,
    /// S3 only: what listing unfinished uploads needs (object_store has no call for it).
    pub s3: Option<Arc<S3Access>>,
    pub url: StoreUrl,
}

/// The S3 client and where it talks to, for requests object_store does not make.
pub(crate) struct S3Access {
    pub client: object_store::aws::AmazonS3,
    pub region: String,
    /// `AWS_ENDPOINT_URL`, when set (path-style requests); else AWS's own endpoint.
    pub endpoint: Option<String>,
    pub allow_http: bool,
}

impl Store {
    /// The object's path in the store.
    pub fn path(&self) -> ObjPath {
        ObjPath::from(self.url.key.as_str())
    }
}

/// `BAK_STORE_RETRIES` (default 10), `BAK_STORE_TIMEOUT` (seconds per request, default 60).
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(8),
            base: 2.0,
        },
        max_retries: env_number("BAK_STORE_RETRIES", 10) as usize,
        retry_timeout: Duration::from_secs(180),
    }
}

/// Seconds one request to complete an upload may take, at least.
pub(crate) const COMPLETE_TIMEOUT: u64 = 900;

/// Build the client for `url` from the environment (never from the command line).
pub(crate) fn connect(url: &StoreUrl) -> bak_core::Result<Store> {
    let timeout = format!("{}s", env_number("BAK_STORE_TIMEOUT", 60));
    let long = format!(
        "{}s",
        env_number("BAK_STORE_TIMEOUT", 60).max(COMPLETE_TIMEOUT)
    );
    let shown = url.shown();
    let fail = |e: object_store::Error| {
        bak_core::Error::io(
            &shown,
            "set up the client for",
            io::Error::other(scrub(&e.to_string())),
        )
    };
    match url.scheme {
        Scheme::S3 => {
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(&url.bucket)
                .with_retry(retry())
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                    timeout.as_str(),
                )
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                    "5s",
                );
            // AWS_REGION is the standard name; object_store reads it, and AWS_DEFAULT_REGION.
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                b = b.with_region("us-east-1");
            }
            let region = b
                .get_config_value(&AmazonS3ConfigKey::Region)
                .or_else(|| b.get_config_value(&AmazonS3ConfigKey::DefaultRegion))
                .unwrap_or_else(|| "us-east-1".into());
            let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
            let allow_http = b
                .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let client = b.clone().build().map_err(fail)?;
            let complete = Arc::new(
                b.with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                    long.as_str(),
                )
                .build()
                .map_err(fail)?,
            );
            let s = Arc::new(client.clone());
            Ok(Store {
                os: s.clone(),
                mp: s,
                complete,
                s3: Some(Arc::new(S3Access {
                    client,
                    region,
                    endpoint,
                    allow_http,
                })),
                url: url.clone(),
            })
        }
        Scheme::Azure => {
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_container_name(&url.bucket)
                .with_retry(retry())
                .with_config(
                    AzureConfigKey::Client(ClientConfigKey::Timeout),
                    timeout.as_str(),
                )
                .with_config(
                    AzureConfigKey::Client(ClientConfigKey::ConnectTimeout),
                    "5s",
                );
            if let Some(q) = url.query() {
                b = b.with_config(AzureConfigKey::SasKey, q);
            }
            let s = Arc::new(b.clone().build().map_err(fail)?);
            let complete = Arc::new(
                b.with_config(
                    AzureConfigKey::Client(ClientConfigKey::Timeout),
                    long.as_str(),
                )
                .build()
                .map_err(fail)?,
            );
            Ok(Store {
                os: s.clone(),
                mp: s,
                complete,
                s3: None,
                url: url.clone(),
            })
        }
        Scheme::Gcs => {
            let b = GoogleCloudStorageBuilder::from_env();
            if !gcs_credentials_given(&b) && !gce_metadata_answers() {
                return Err(bak_core::Error::io(
                    &shown,
                    "set up the client for",
                    io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "no Google Cloud credentials: set GOOGLE_SERVICE_ACCOUNT (the path of a \
                         service account's JSON key), GOOGLE_SERVICE_ACCOUNT_KEY (the key \
                         itself) or GOOGLE_APPLICATION_CREDENTIALS, or run where the GCE \
                         metadata server answers",
                    ),
                ));
            }
            let with = |secs: u64| {
                b.clone()
                    .with_bucket_name(&url.bucket)
                    .with_retry(retry())
                    .with_client_options(
                        object_store::ClientOptions::new()
                            .with_timeout(Duration::from_secs(secs))
                            .with_connect_timeout(Duration::from_secs(5)),
                    )
                    .build()
                    .map_err(fail)
            };
            let secs = env_number("BAK_STORE_TIMEOUT", 60);
            let s = Arc::new(with(secs)?);
            let complete = Arc::new(with(secs.max(COMPLETE_TIMEOUT))?);
            Ok(Store {
                os: s.clone(),
                mp: s,
                complete,
                s3: None,
                url: url.clone(),
            })
        }
    }
}

/// True when the environment names Google credentials (a service account, a key, application
/// default credentials, a bearer token, or no signing at all), or gcloud's application
/// default credentials file is there.
fn gcs_credentials_given(b: &GoogleCloudStorageBuilder) -> bool {
    use object_store::gcp::GoogleConfigKey as K;
    let given = [
        K::ServiceAccount,
        K::ServiceAccountKey,
        K::ApplicationCredentials,
        K::BearerToken,
        K::SkipSignature,
    ]
    .iter()
    .any(|k| b.get_config_value(k).is_some_and(|v| !v.is_empty()));
    given
        || std::env::var_os("HOME").is_some_and(|h| {
            std::path::Path::new(&h)
                .join(".config/gcloud/application_default_credentials.json")
                .exists()
        })
}

/// Without credentials in the environment, object_store asks the GCE metadata server for a
/// token, retrying for minutes where there is none: ask first whether it listens at all
/// (`GCE_METADATA_HOST` or `GCE_METADATA_ROOT` if set, then `GCE_METADATA_IP`, else
/// 169.254.169.254), for a second at most.
fn gce_metadata_answers() -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    // As object_store picks them: the host if named, then the IP.
    let var = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
    let hosts: Vec<String> = var("GCE_METADATA_HOST")
        .or_else(|| var("GCE_METADATA_ROOT"))
        .into_iter()
        .chain(Some(
            var("GCE_METADATA_IP").unwrap_or_else(|| "169.254.169.254".into()),
        ))
        .collect();
    hosts.iter().any(|h| {
        let h = h.trim_start_matches("http://").trim_end_matches('/');
        let with_port = if h.contains(':') {
            h.to_string()
        } else {
            format!("{h}:80")
        };
        with_port.to_socket_addrs().is_ok_and(|mut a| {
            a.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
        })
    })
}

/// What went wrong with a request, by type: the HTTP status, or why no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    NotFound,
    Denied,
    Unreachable,
    TimedOut,
    Other,
}

pub(crate) fn failure(e: &object_store::Error) -> Failure {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => return Failure::NotFound,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => return Failure::Denied,
        _ => {}
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            return match h.kind() {
                K::Connect => Failure::Unreachable,
                K::Timeout => Failure::TimedOut,
                _ => Failure::Other,
            };
        }
        src = s.source();
    }
    Failure::Other
}

/// An object_store error in words: what a person can act on, then the store's own answer
/// (its error code and message), with no query string or secret in it.
pub(crate) fn describe(e: &object_store::Error) -> String {
    let why = match failure(e) {
        Failure::NotFound => "not found".to_string(),
        Failure::Denied => "access denied: the store refused the credentials from the \
                            environment (or they lack the permission)"
            .to_string(),
        Failure::Unreachable => "cannot connect to the store's endpoint".to_string(),
        Failure::TimedOut => "the store did not answer in time".to_string(),
        Failure::Other => String::new(),
    };
    let detail = match store_answer(e) {
        Some((code, Some(msg))) => format!("the store answered {code}: {msg}"),
        Some((code, None)) => format!("the store answered {code}"),
        None => innermost(e),
    };
    let detail = scrub(&detail);
    match (why.is_empty(), detail.is_empty()) {
        (true, _) => detail,
        (false, true) => why,
        (false, false) => format!("{why} ({detail})"),
    }
}

/// The store's error code and message from its XML answer (`NoSuchBucket`, `The specified
/// bucket does not exist`), when it had them: shorter than the whole body object_store quotes.
pub(crate) fn store_answer(e: &object_store::Error) -> Option<(String, Option<String>)> {
    let text = e.to_string();
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let i = text.find(&open)? + open.len();
        let j = text[i..].find('<')? + i;
        Some(text[i..j].trim().to_string())
    };
    let code = tag("Code")?;
    Some((code, tag("Message").map(|m| first_line(&m).to_string())))
}

/// True when the store says the bucket or container itself is missing (S3 and GCS's XML API
/// `NoSuchBucket`, Azure's `ContainerNotFound`).
pub(crate) fn no_bucket(e: &object_store::Error) -> bool {
    store_answer(e).is_some_and(|(c, _)| c == "NoSuchBucket" || c == "ContainerNotFound")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// The last message in an error's chain: the one that says what happened at the bottom.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        last = s.to_string();
        src = s.source();
    }
    last
}

/// Remove what must never be printed: the query of every URL in a message (signatures, SAS
/// tokens) and the values of the secret environment variables.
pub fn scrub(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || c == ')' || c == '"' || c == '\'')
            .unwrap_or(after.len());
        let url = &after[..end];
        out.push_str(url.split('?').next().unwrap_or(url));
        rest = &after[end..];
    }
    out.push_str(rest);
    for var in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_ACCESS_KEY",
        "AZURE_STORAGE_SAS_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_STORAGE_TOKEN",
        "AZURE_CLIENT_SECRET",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
    ] {
        if let Ok(v) = std::env::var(var) {
            if v.len() >= 4 {
                out = out.replace(&v, "<secret>");
            }
        }
    }
    out
}

/// An object_store error as an `io::Error` of the matching kind, in words.
pub(crate) fn io_error(e: &object_store::Error) -> io::Error {
    let kind = match failure(e) {
        Failure::NotFound => io::ErrorKind::NotFound,
        Failure::Denied => io::ErrorKind::PermissionDenied,
        Failure::Unreachable => io::ErrorKind::ConnectionRefused,
        Failure::TimedOut => io::ErrorKind::TimedOut,
        Failure::Other => io::ErrorKind::Other,
    };
    io::Error::new(kind, describe(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_drops_queries() {
        assert_eq!(
            scrub("GET http://h:1/b/k?sig=S&x=1 failed (http://a/b?c)"),
            "GET http://h:1/b/k failed (http://a/b)"
        );
        assert_eq!(scrub("no url here"), "no url here");
    }
}
