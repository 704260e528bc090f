//! RFC 9457 problem details: every error the API returns.

use serde_json::{json, Map, Value};

use super::ApiResponse;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type` URI; the slug after it names the problem.
pub const TYPE_PREFIX: &str = "urn:jobs-platform:problem:";

/// One error response: status, a stable type slug, a safe message, extension
/// members and extra headers. The internal cause, if any, goes only to the log.
///
/// Boxed, so that `Result<_, Problem>` stays small on the happy path.
#[derive(Debug, Clone)]
pub struct Problem(Box<Details>);

/// The parts of a [`Problem`].
#[derive(Debug, Clone)]
pub struct Details {
    /// HTTP status.
    pub status: u16,
    /// The last part of the `type` URI, e.g. `invalid-input`.
    pub slug: &'static str,
    /// Short, fixed summary of the problem type.
    pub title: &'static str,
    /// Explanation of this occurrence, safe to show to the caller.
    pub detail: String,
    /// Extension members (e.g. `errors`).
    pub extensions: Map<String, Value>,
    /// Extra response headers (e.g. `Retry-After`).
    pub headers: Vec<(String, String)>,
    /// The internal cause, logged but never sent.
    pub cause: Option<String>,
}

impl Problem {
    /// A problem with no extensions, headers or cause.
    pub fn new(
        status: u16,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self(Box::new(Details {
            status,
            slug,
            title,
            detail: detail.into(),
            extensions: Map::new(),
            headers: Vec::new(),
            cause: None,
        }))
    }

    /// Its parts.
    pub fn details(&self) -> &Details {
        &self.0
    }

    /// The internal cause, for the log.
    pub fn take_cause(&mut self) -> Option<String> {
        self.0.cause.take()
    }

    /// Add an extension member.
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.0.extensions.insert(name.to_string(), value);
        self
    }

    /// Add a response header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.headers.push((name.to_string(), value.into()));
        self
    }

    /// Record the internal cause for the log.
    pub fn cause(mut self, cause: impl std::fmt::Display) -> Self {
        self.0.cause = Some(cause.to_string());
        self
    }

    /// `400`: a header has an invalid value.
    pub fn invalid_header(detail: impl Into<String>) -> Self {
        Self::new(400, "invalid-header", "Invalid header", detail)
    }

    /// `400`: a query parameter has an invalid value.
    pub fn invalid_query(detail: impl Into<String>) -> Self {
        Self::new(400, "invalid-query", "Invalid query parameter", detail)
    }

    /// `400`: the body is not JSON.
    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(400, "malformed-json", "Malformed JSON", detail)
    }

    /// `401` with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(token_presented: bool) -> Self {
        let (detail, challenge) = if token_presented {
            (
                "the bearer token is not valid for this route",
                r#"Bearer realm="jobs-platform", error="invalid_token""#,
            )
        } else {
            (
                "this route needs an `Authorization: Bearer <token>` header",
                r#"Bearer realm="jobs-platform""#,
            )
        };
        Self::new(401, "unauthorized", "Unauthorized", detail).header("www-authenticate", challenge)
    }

    /// `404`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "not-found", "Not found", detail)
    }

    /// `405` with `Allow`.
    pub fn method_not_allowed(method: &str, allow: &[&str]) -> Self {
        let allow = allow.join(", ");
        Self::new(
            405,
            "method-not-allowed",
            "Method not allowed",
            format!("this route does not support {method}; allowed: {allow}"),
        )
        .header("allow", allow)
    }

    /// `413`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "payload-too-large",
            "Payload too large",
            format!("the request body exceeds the limit of {limit} bytes"),
        )
        .with("max_body_bytes", json!(limit))
    }

    /// `415`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "the request body must be `application/json`",
        )
    }

    /// `500` with a generic message; `cause` goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "internal",
            "Internal server error",
            "the request could not be completed; quote the request id when reporting it",
        )
        .cause(cause)
    }

    /// `503` with `Retry-After: 1`: Redis is unreachable.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        Self::new(
            503,
            "unavailable",
            "Service unavailable",
            "the job store is unreachable; retry later",
        )
        .header("retry-after", "1")
        .cause(cause)
    }

    /// The full `type` URI.
    pub fn type_uri(&self) -> String {
        format!("{TYPE_PREFIX}{}", self.0.slug)
    }

    /// The `application/problem+json` response; `instance` is the request path.
    pub fn to_response(&self, instance: &str, request_id: &str) -> ApiResponse {
        let details = &self.0;
        let mut body = Map::new();
        body.insert("type".into(), json!(self.type_uri()));
        body.insert("title".into(), json!(details.title));
        body.insert("status".into(), json!(details.status));
        body.insert("detail".into(), json!(details.detail));
        body.insert("instance".into(), json!(instance));
        body.insert("request_id".into(), json!(request_id));
        for (name, value) in &details.extensions {
            body.insert(name.clone(), value.clone());
        }
        let mut response =
            ApiResponse::json_with_type(details.status, PROBLEM_JSON, &Value::Object(body));
        response.headers.extend(details.headers.iter().cloned());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_rfc9457_members_and_extensions() {
        let problem = Problem::new(422, "invalid-input", "Invalid input", "bad").with(
            "errors",
            json!([{"pointer": "/input/text", "message": "required"}]),
        );
        let response = problem.to_response("/api/v1/jobs", "req-1");
        assert_eq!(response.status, 422);
        assert_eq!(response.header("content-type"), Some(PROBLEM_JSON));
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["type"], "urn:jobs-platform:problem:invalid-input");
        assert_eq!(body["title"], "Invalid input");
        assert_eq!(body["status"], 422);
        assert_eq!(body["detail"], "bad");
        assert_eq!(body["instance"], "/api/v1/jobs");
        assert_eq!(body["request_id"], "req-1");
        assert_eq!(body["errors"][0]["pointer"], "/input/text");
    }

    #[test]
    fn internal_causes_stay_out_of_the_body() {
        let response =
            Problem::internal("ERR Error running script at line 3").to_response("/x", "r");
        let text = String::from_utf8(response.body).unwrap();
        assert!(!text.contains("script"), "{text}");
        let response =
            Problem::unavailable("connection refused (os error 111)").to_response("/x", "r");
        assert_eq!(response.header("retry-after"), Some("1"));
        assert!(!String::from_utf8(response.body)
            .unwrap()
            .contains("refused"));
    }

    #[test]
    fn auth_and_method_problems_carry_their_headers() {
        let response = Problem::unauthorized(false).to_response("/x", "r");
        assert!(response
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer"));
        let response = Problem::method_not_allowed("PUT", &["GET", "POST"]).to_response("/x", "r");
        assert_eq!(response.header("allow"), Some("GET, POST"));
    }
}
