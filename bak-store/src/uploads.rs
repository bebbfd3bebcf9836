//! Unfinished multipart uploads: what a `kill -9` (or a machine that died) left of a backup
//! in object storage. They are invisible as objects and never look like media, but the store
//! keeps (and bills) their parts until they are aborted. S3 lists them (ListMultipartUploads,
//! a request object_store does not make, so it is signed here with object_store's own
//! `AwsAuthorizer`); Azure discards uncommitted blocks by itself after 7 days.

use std::io;
use std::path::Path;

use bak_core::{Error, Refusal, Result};
use object_store::client::{HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, MultipartId};
use serde::Deserialize;

use crate::runtime::block_on;
use crate::store::{connect, S3Access};
use crate::url::{Scheme, StoreUrl};

/// One unfinished upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Unfinished {
    /// The object it would make, as a URL.
    pub url: String,
    /// The store's id of the upload.
    pub upload_id: String,
    /// When it was started, as the store says it.
    pub initiated: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListResult {
    #[serde(default)]
    upload: Vec<Upload>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Upload {
    key: String,
    upload_id: String,
    #[serde(default)]
    initiated: String,
}

fn url_of(name: &Path) -> Result<StoreUrl> {
    let s = name
        .to_str()
        .ok_or_else(|| Error::refused(Refusal::Usage, "a device URL must be UTF-8"))?;
    StoreUrl::parse(s).map_err(|m| Error::refused(Refusal::Usage, m))
}

/// The unfinished uploads of the family whose first volume is `name`: those of its key and of
/// its volumes' keys (`KEY.v2`, ...). Exact key or `KEY.v` followed by digits only.
pub fn list_unfinished(name: &Path) -> Result<Vec<Unfinished>> {
    let url = url_of(name)?;
    let store = connect(&url)?;
    let shown = url.shown();
    let Some(s3) = store.s3.as_ref() else {
        return Err(Error::refused(
            Refusal::Capability,
            match url.scheme {
                Scheme::Azure => format!(
                    "{shown}: Azure Blob Storage keeps no unfinished upload to list: blocks never \
                     committed are discarded by the service after 7 days"
                ),
                _ => format!("{shown}: listing unfinished uploads is done for s3:// URLs only"),
            },
        ));
    };
    let mine = |k: &str| {
        k == url.key
            || k.strip_prefix(&url.key)
                .and_then(|r| r.strip_prefix(".v"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut out = Vec::new();
    let mut marker: Option<(String, String)> = None;
    // Bounded: 1000 uploads a page, 100 pages.
    for _ in 0..100 {
        let page = block_on(list_page(s3, &url, marker.as_ref()))
            .map_err(|e| Error::io(&shown, "list the unfinished uploads of", e))?;
        out.extend(
            page.upload
                .into_iter()
                .filter(|u| mine(&u.key))
                .map(|u| Unfinished {
                    url: url.with_key(u.key).shown(),
                    upload_id: u.upload_id,
                    initiated: u.initiated,
                }),
        );
        match (
            page.is_truncated,
            page.next_key_marker,
            page.next_upload_id_marker,
        ) {
            (true, Some(k), Some(u)) => marker = Some((k, u)),
            _ => break,
        }
    }
    Ok(out)
}

async fn list_page(
    s3: &S3Access,
    url: &StoreUrl,
    marker: Option<&(String, String)>,
) -> io::Result<ListResult> {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("prefix", &url.key);
    if let Some((k, u)) = marker {
        q.append_pair("key-marker", k)
            .append_pair("upload-id-marker", u);
    }
    let base = match &s3.endpoint {
        Some(e) => format!("{}/{}", e.trim_end_matches('/'), url.bucket),
        None => format!("https://s3.{}.amazonaws.com/{}", s3.region, url.bucket),
    };
    let target = format!("{base}?uploads&{}", q.finish());
    let mut req = http::Request::builder()
        .method("GET")
        .uri(&target)
        .body(HttpRequestBody::empty())
        .map_err(io::Error::other)?;
    let cred = s3
        .client
        .credentials()
        .get_credential()
        .await
        .map_err(|e| io::Error::other(crate::store::describe(&e)))?;
    object_store::aws::AwsAuthorizer::new(&cred, "s3", &s3.region)
        .try_authorize(&mut req, None)
        .map_err(|e| io::Error::other(crate::store::describe(&e)))?;
    let client = ReqwestConnector::default()
        .connect(&ClientOptions::new().with_allow_http(s3.allow_http))
        .map_err(|e| io::Error::other(crate::store::describe(&e)))?;
    let resp = client
        .execute(req)
        .await
        .map_err(|e| io::Error::other(crate::store::scrub(&e.to_string())))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .bytes()
        .await
        .map_err(|e| io::Error::other(crate::store::scrub(&e.to_string())))?;
    let text = String::from_utf8_lossy(&body);
    if !status.is_success() {
        let kind = match status.as_u16() {
            401 | 403 => io::ErrorKind::PermissionDenied,
            404 => io::ErrorKind::NotFound,
            _ => io::ErrorKind::Other,
        };
        return Err(io::Error::new(
            kind,
            format!("the store answered HTTP {status}"),
        ));
    }
    quick_xml::de::from_str(&text)
        .map_err(|e| io::Error::other(format!("the store's list of uploads does not parse: {e}")))
}

/// Abort one unfinished upload: its parts are discarded.
pub fn abort(u: &Unfinished) -> Result<()> {
    let url = url_of(Path::new(&u.url))?;
    let store = connect(&url)?;
    let id: MultipartId = u.upload_id.clone();
    block_on(
        store
            .mp
            .abort_multipart(&ObjPath::from(url.key.as_str()), &id),
    )
    .map_err(|e| {
        Error::io(
            url.shown(),
            "abort an upload of",
            crate::store::io_error(&e),
        )
    })
}
