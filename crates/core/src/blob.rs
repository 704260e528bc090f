//! An Azure Blob Storage REST client over the [`Http`] port: create the
//! container, write a blob only if absent, read a blob.
//!
//! Authentication is Shared Key (Azurite, development) or a SAS token (AKS,
//! from Key Vault). Shared Key signing follows
//! <https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key>:
//! the string to sign is the verb, the 11 standard headers, the canonicalized
//! `x-ms-*` headers and the canonicalized resource `/{account}{url path}`
//! plus the query parameters, lower-cased and sorted; the signature is the
//! base64 HMAC-SHA256 of it under the decoded account key. For Azurite's
//! path-style URLs the URL path already starts with `/devstoreaccount1`, so the
//! resource reads `/devstoreaccount1/devstoreaccount1/{container}/{blob}`.

use std::time::SystemTime;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{BlobAuth, BlobConfig};
pub use crate::error::BlobError;
use crate::ports::{Http, HttpRequest, HttpResponse};

/// The Blob service REST version sent as `x-ms-version`.
pub const API_VERSION: &str = "2021-12-02";

/// What [`BlobClient::put_if_absent`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The blob was written.
    Created,
    /// A blob of that name existed already and was left alone.
    AlreadyExists,
}

/// A client for one container.
pub struct BlobClient<'a, H> {
    config: &'a BlobConfig,
    http: &'a H,
}

impl<'a, H: Http> BlobClient<'a, H> {
    /// A client for `config`'s container, sending through `http`.
    pub fn new(config: &'a BlobConfig, http: &'a H) -> Self {
        Self { config, http }
    }

    /// Create the container if it does not exist.
    pub async fn ensure_container(&self) -> Result<(), BlobError> {
        let request = self.request(
            "PUT",
            None,
            &[("restype", "container")],
            Vec::new(),
            Vec::new(),
            now(),
        );
        let response = self.send(request).await?;
        match response.status {
            201 => Ok(()),
            409 if error_code(&response) == "ContainerAlreadyExists" => Ok(()),
            _ => Err(status_error(&response)),
        }
    }

    /// Write `bytes` to the blob `name` unless it exists (`If-None-Match: *`).
    /// If the container is missing, create it and try once more.
    pub async fn put_if_absent(
        &self,
        name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<PutOutcome, BlobError> {
        let mut created_container = false;
        loop {
            let headers = vec![
                ("content-type".to_string(), content_type.to_string()),
                ("if-none-match".to_string(), "*".to_string()),
                ("x-ms-blob-type".to_string(), "BlockBlob".to_string()),
            ];
            let request = self.request("PUT", Some(name), &[], headers, bytes.to_vec(), now());
            let response = self.send(request).await?;
            let code = error_code(&response);
            match response.status {
                201 => return Ok(PutOutcome::Created),
                412 => return Ok(PutOutcome::AlreadyExists),
                // Only the code says the blob is there: another 409 (a
                // lease, a pending copy, an unknown conflict) is an error.
                409 if code == "BlobAlreadyExists" => return Ok(PutOutcome::AlreadyExists),
                404 if code == "ContainerNotFound" && !created_container => {
                    self.ensure_container().await?;
                    created_container = true;
                }
                _ => return Err(status_error(&response)),
            }
        }
    }

    /// The size of the blob `name` (`HEAD`), or `None` if absent.
    pub async fn size(&self, name: &str) -> Result<Option<u64>, BlobError> {
        let request = self.request("HEAD", Some(name), &[], Vec::new(), Vec::new(), now());
        let response = self.send(request).await?;
        match response.status {
            200 => response
                .header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .map(Some)
                .ok_or_else(|| BlobError::Status {
                    status: 200,
                    code: "MissingContentLength".into(),
                }),
            404 => Ok(None),
            _ => Err(status_error(&response)),
        }
    }

    /// Read the blob `name`: its content type and bytes, or `None` if absent.
    pub async fn get(&self, name: &str) -> Result<Option<(String, Vec<u8>)>, BlobError> {
        let request = self.request("GET", Some(name), &[], Vec::new(), Vec::new(), now());
        let response = self.send(request).await?;
        match response.status {
            200 => {
                let content_type = response
                    .header("content-type")
                    .unwrap_or("application/octet-stream")
                    .to_string();
                Ok(Some((content_type, response.body)))
            }
            404 => Ok(None),
            _ => Err(status_error(&response)),
        }
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, BlobError> {
        self.http
            .send(request)
            .await
            .map_err(|e| BlobError::Unavailable(e.0))
    }

    /// Build a signed (or SAS-authorized) request. `headers` are lower-case.
    fn request(
        &self,
        method: &str,
        blob: Option<&str>,
        query: &[(&str, &str)],
        mut headers: Vec<(String, String)>,
        body: Vec<u8>,
        date: SystemTime,
    ) -> HttpRequest {
        let (origin, base_path) = split_endpoint(&self.config.endpoint);
        let mut path = format!("{base_path}/{}", self.config.container);
        if let Some(blob) = blob {
            path.push('/');
            path.push_str(&encode_path(blob));
        }
        headers.push(("x-ms-date".into(), httpdate::fmt_http_date(date)));
        headers.push(("x-ms-version".into(), API_VERSION.into()));
        if method == "PUT" {
            headers.push(("content-length".into(), body.len().to_string()));
        }

        let mut query_string: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match &self.config.auth {
            BlobAuth::SharedKey { key } => {
                let to_sign = string_to_sign(method, &headers, &self.config.account, &path, query);
                let signature = sign(key, &to_sign);
                headers.push((
                    "authorization".into(),
                    format!("SharedKey {}:{signature}", self.config.account),
                ));
            }
            BlobAuth::Sas { token } => query_string.push(token.clone()),
        }
        let mut url = format!("{origin}{path}");
        if !query_string.is_empty() {
            url.push('?');
            url.push_str(&query_string.join("&"));
        }
        HttpRequest {
            method: method.into(),
            url,
            headers,
            body,
        }
    }
}

fn now() -> SystemTime {
    SystemTime::now()
}

/// `http://host:port/path` → (`http://host:port`, `/path`).
fn split_endpoint(endpoint: &str) -> (&str, &str) {
    let after_scheme = endpoint.find("://").map_or(0, |i| i + 3);
    match endpoint[after_scheme..].find('/') {
        Some(i) => endpoint.split_at(after_scheme + i),
        None => (endpoint, ""),
    }
}

/// Percent-encode a blob name, keeping unreserved characters and `/`.
fn encode_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The Shared Key string to sign (service version 2015-02-21 and later:
/// `Content-Length` is empty when zero). `headers` are matched
/// case-insensitively; `path` is the URL path as sent.
pub fn string_to_sign(
    method: &str,
    headers: &[(String, String)],
    account: &str,
    path: &str,
    query: &[(&str, &str)],
) -> String {
    let header = |name: &str| -> &str {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    };
    let content_length = match header("content-length") {
        "0" => "",
        other => other,
    };
    let mut s = String::new();
    for line in [
        method,
        header("content-encoding"),
        header("content-language"),
        content_length,
        header("content-md5"),
        header("content-type"),
        header("date"),
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    ] {
        s.push_str(line);
        s.push('\n');
    }

    let mut ms: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    ms.sort();
    for (name, value) in ms {
        s.push_str(&name);
        s.push(':');
        s.push_str(&value);
        s.push('\n');
    }

    s.push('/');
    s.push_str(account);
    s.push_str(path);
    let mut params: Vec<(String, &str)> = query
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    params.sort();
    for (name, value) in params {
        s.push('\n');
        s.push_str(&name);
        s.push(':');
        s.push_str(value);
    }
    s
}

/// Base64 HMAC-SHA256 of `string_to_sign` under the (decoded) account key.
pub fn sign(key: &[u8], string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `x-ms-error-code` header, or the `<Code>` of the XML error body.
fn error_code(response: &HttpResponse) -> String {
    if let Some(code) = response.header("x-ms-error-code") {
        return code.to_string();
    }
    let body = String::from_utf8_lossy(&response.body);
    body.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_string())
        .unwrap_or_default()
}

fn status_error(response: &HttpResponse) -> BlobError {
    let code = error_code(response);
    if response.status == 403 {
        BlobError::Auth { code }
    } else {
        BlobError::Status {
            status: response.status,
            code,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ports::block_on;
    use std::cell::RefCell;
    use std::time::Duration;

    use super::*;
    use crate::ports::HttpError;

    const AZURITE_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn azurite(auth: BlobAuth) -> BlobConfig {
        BlobConfig {
            endpoint: "http://127.0.0.1:10000/devstoreaccount1".into(),
            account: "devstoreaccount1".into(),
            container: "results".into(),
            auth,
        }
    }

    fn shared_key() -> BlobAuth {
        BlobAuth::SharedKey {
            key: base64::engine::general_purpose::STANDARD
                .decode(AZURITE_KEY)
                .unwrap(),
        }
    }

    /// 2024-01-02T03:04:05Z
    fn fixed_date() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_164_645)
    }

    struct Replay {
        responses: RefCell<Vec<Result<HttpResponse, HttpError>>>,
        requests: RefCell<Vec<HttpRequest>>,
    }

    impl Replay {
        fn new(responses: Vec<Result<HttpResponse, HttpError>>) -> Self {
            Self {
                responses: RefCell::new(responses),
                requests: RefCell::new(Vec::new()),
            }
        }
    }

    impl Http for Replay {
        async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
            self.requests.borrow_mut().push(request);
            self.responses.borrow_mut().remove(0)
        }
    }

    fn response(status: u16, code: &str) -> Result<HttpResponse, HttpError> {
        let headers = if code.is_empty() {
            vec![]
        } else {
            vec![("x-ms-error-code".into(), code.into())]
        };
        Ok(HttpResponse {
            status,
            headers,
            body: Vec::new(),
        })
    }

    #[test]
    fn put_blob_string_to_sign_and_signature() {
        let config = azurite(shared_key());
        let http = Replay::new(vec![]);
        let client = BlobClient::new(&config, &http);
        let headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("if-none-match".to_string(), "*".to_string()),
            ("x-ms-blob-type".to_string(), "BlockBlob".to_string()),
        ];
        let request = client.request(
            "PUT",
            Some("acme/job 1.json"),
            &[],
            headers,
            b"{\"a\":1}".to_vec(),
            fixed_date(),
        );
        assert_eq!(
            request.url,
            "http://127.0.0.1:10000/devstoreaccount1/results/acme/job%201.json"
        );

        let expected_to_sign = "PUT\n\n\n7\n\napplication/json\n\n\n\n*\n\n\n\
            x-ms-blob-type:BlockBlob\nx-ms-date:Tue, 02 Jan 2024 03:04:05 GMT\nx-ms-version:2021-12-02\n\
            /devstoreaccount1/devstoreaccount1/results/acme/job%201.json";
        assert_eq!(
            string_to_sign(
                "PUT",
                &request.headers,
                "devstoreaccount1",
                "/devstoreaccount1/results/acme/job%201.json",
                &[]
            ),
            expected_to_sign
        );
        // Computed independently with Python:
        //   base64.b64encode(hmac.new(base64.b64decode(KEY), expected_to_sign.encode(), hashlib.sha256).digest())
        let authorization = request
            .headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap();
        assert_eq!(
            authorization.1,
            "SharedKey devstoreaccount1:OPKnQ+FX0mHhgQWv4NKHAVICOHn/9IBSc3hG/jehXMc="
        );
    }

    #[test]
    fn create_container_signs_sorted_query_and_empty_length() {
        let to_sign = string_to_sign(
            "PUT",
            &[
                ("Content-Length".into(), "0".into()),
                ("X-MS-Version".into(), "2021-12-02".into()),
                ("x-ms-date".into(), "Tue, 02 Jan 2024 03:04:05 GMT".into()),
                ("x-ms-meta-a".into(), "  two   words ".into()),
            ],
            "myaccount",
            "/mycontainer",
            &[("restype", "container"), ("COMP", "x")],
        );
        let expected = "PUT\n\n\n\n\n\n\n\n\n\n\n\n\
            x-ms-date:Tue, 02 Jan 2024 03:04:05 GMT\nx-ms-meta-a:two words\nx-ms-version:2021-12-02\n\
            /myaccount/mycontainer\ncomp:x\nrestype:container";
        assert_eq!(to_sign, expected);
        // Python: base64.b64encode(hmac.new(base64.b64decode(KEY), expected.encode(), hashlib.sha256).digest())
        let key = base64::engine::general_purpose::STANDARD
            .decode(AZURITE_KEY)
            .unwrap();
        assert_eq!(
            sign(&key, &to_sign),
            "KGJjJAQvpjA/ggvT6V2H37lO2ZOe6nVRxRu/lBcDWAs="
        );
    }

    #[test]
    fn sas_is_appended_to_the_query_without_authorization() {
        let config = BlobConfig {
            endpoint: "https://acct.blob.core.windows.net".into(),
            account: "acct".into(),
            container: "results".into(),
            auth: BlobAuth::Sas {
                token: "sv=2022-11-02&sig=abc%3D".into(),
            },
        };
        let http = Replay::new(vec![]);
        let client = BlobClient::new(&config, &http);
        let request = client.request(
            "PUT",
            None,
            &[("restype", "container")],
            vec![],
            vec![],
            fixed_date(),
        );
        assert_eq!(
            request.url,
            "https://acct.blob.core.windows.net/results?restype=container&sv=2022-11-02&sig=abc%3D"
        );
        assert!(request.headers.iter().all(|(n, _)| n != "authorization"));
        let get = client.request("GET", Some("t/x.png"), &[], vec![], vec![], fixed_date());
        assert_eq!(
            get.url,
            "https://acct.blob.core.windows.net/results/t/x.png?sv=2022-11-02&sig=abc%3D"
        );
    }

    #[test]
    fn put_creates_the_missing_container_once_and_retries() {
        let config = azurite(shared_key());
        let http = Replay::new(vec![
            response(404, "ContainerNotFound"),
            response(201, ""),
            response(201, ""),
        ]);
        let outcome = block_on(BlobClient::new(&config, &http).put_if_absent(
            "t/a.json",
            "application/json",
            b"{}",
        ));
        assert_eq!(outcome, Ok(PutOutcome::Created));
        let requests = http.requests.borrow();
        assert_eq!(requests.len(), 3);
        assert!(requests[1].url.ends_with("/results?restype=container"));
        let put = &requests[2];
        assert!(put.headers.contains(&("if-none-match".into(), "*".into())));
        assert!(put
            .headers
            .contains(&("x-ms-blob-type".into(), "BlockBlob".into())));
        assert_eq!(put.body, b"{}");
    }

    #[test]
    fn put_outcomes_and_errors() {
        let config = azurite(shared_key());
        for (reply, expected) in [
            (
                response(409, "BlobAlreadyExists"),
                Ok(PutOutcome::AlreadyExists),
            ),
            (
                response(412, "ConditionNotMet"),
                Ok(PutOutcome::AlreadyExists),
            ),
            // A conflict that is not "the blob exists" is not taken as stored.
            (
                response(409, "LeaseIdMissing"),
                Err(BlobError::Status {
                    status: 409,
                    code: "LeaseIdMissing".into(),
                }),
            ),
            (
                response(409, ""),
                Err(BlobError::Status {
                    status: 409,
                    code: "".into(),
                }),
            ),
            (
                response(403, "AuthenticationFailed"),
                Err(BlobError::Auth {
                    code: "AuthenticationFailed".into(),
                }),
            ),
            (
                response(503, "ServerBusy"),
                Err(BlobError::Status {
                    status: 503,
                    code: "ServerBusy".into(),
                }),
            ),
            (
                Err(HttpError("connection refused".into())),
                Err(BlobError::Unavailable("connection refused".into())),
            ),
        ] {
            let http = Replay::new(vec![reply]);
            let outcome = block_on(BlobClient::new(&config, &http).put_if_absent(
                "t/a.json",
                "application/json",
                b"{}",
            ));
            assert_eq!(outcome, expected);
        }
        // The container is created at most once per put.
        let http = Replay::new(vec![
            response(404, "ContainerNotFound"),
            response(409, "ContainerAlreadyExists"),
            response(404, "ContainerNotFound"),
        ]);
        let outcome = block_on(BlobClient::new(&config, &http).put_if_absent(
            "t/a.json",
            "application/json",
            b"{}",
        ));
        assert_eq!(
            outcome,
            Err(BlobError::Status {
                status: 404,
                code: "ContainerNotFound".into()
            })
        );
    }

    #[test]
    fn get_maps_404_to_none_and_reads_xml_error_codes() {
        let config = azurite(shared_key());
        let http = Replay::new(vec![
            response(404, "BlobNotFound"),
            Ok(HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), "image/png".into())],
                body: vec![1, 2],
            }),
            Ok(HttpResponse {
                status: 400,
                headers: vec![],
                body: b"<?xml?><Error><Code>InvalidUri</Code></Error>".to_vec(),
            }),
        ]);
        let client = BlobClient::new(&config, &http);
        assert_eq!(block_on(client.get("t/a.png")), Ok(None));
        assert_eq!(
            block_on(client.get("t/a.png")),
            Ok(Some(("image/png".into(), vec![1, 2])))
        );
        assert_eq!(
            block_on(client.get("t/a.png")),
            Err(BlobError::Status {
                status: 400,
                code: "InvalidUri".into()
            })
        );
    }

    #[test]
    fn endpoints_split_into_origin_and_path() {
        assert_eq!(
            split_endpoint("http://127.0.0.1:10000/devstoreaccount1"),
            ("http://127.0.0.1:10000", "/devstoreaccount1")
        );
        assert_eq!(
            split_endpoint("https://a.blob.core.windows.net"),
            ("https://a.blob.core.windows.net", "")
        );
    }
}
