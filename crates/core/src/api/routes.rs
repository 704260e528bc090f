//! The route table: every method and path the API serves, with the statuses
//! each one can return. The OpenAPI document is checked against this table.

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    /// `GET /healthz`.
    Healthz,
    /// `GET /readyz`.
    Readyz,
    /// `GET /api/v1/openapi.json`.
    OpenApi,
    /// `POST /api/v1/jobs`.
    SubmitJob,
    /// `GET /api/v1/jobs/{id}`.
    GetJob,
    /// `GET /api/v1/jobs/{id}/result`.
    GetResult,
    /// `GET /api/v1/admin/dead-letters`.
    DeadLetters,
    /// `POST /api/v1/admin/dead-letters/{id}/redrive`.
    Redrive,
    /// `POST /api/v1/admin/sweep`.
    Sweep,
    /// `GET /api/v1/admin/backlog`.
    Backlog,
    /// `POST /api/v1/admin/dead-letters/redrive`.
    RedriveAll,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Open,
    /// A tenant API key.
    Tenant,
    /// The operator token.
    Admin,
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// What it does.
    pub id: RouteId,
    /// Upper-case method.
    pub method: &'static str,
    /// Path template, as in the OpenAPI document.
    pub template: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Whether it takes a request body. The body of any other route is
    /// never read.
    pub body: bool,
    /// Every status it can return.
    pub statuses: &'static [u16],
}

/// Every route.
pub const ROUTES: &[Route] = &[
    Route {
        id: RouteId::Healthz,
        method: "GET",
        template: "/healthz",
        access: Access::Open,
        body: false,
        statuses: &[200],
    },
    Route {
        id: RouteId::Readyz,
        method: "GET",
        template: "/readyz",
        access: Access::Open,
        body: false,
        statuses: &[200, 503],
    },
    Route {
        id: RouteId::OpenApi,
        method: "GET",
        template: "/api/v1/openapi.json",
        access: Access::Open,
        body: false,
        statuses: &[200],
    },
    Route {
        id: RouteId::SubmitJob,
        method: "POST",
        template: "/api/v1/jobs",
        access: Access::Tenant,
        body: true,
        statuses: &[200, 202, 400, 401, 409, 413, 415, 422, 429, 500, 503],
    },
    Route {
        id: RouteId::GetJob,
        method: "GET",
        template: "/api/v1/jobs/{id}",
        access: Access::Tenant,
        body: false,
        statuses: &[200, 401, 404, 500, 503],
    },
    Route {
        id: RouteId::GetResult,
        method: "GET",
        template: "/api/v1/jobs/{id}/result",
        access: Access::Tenant,
        body: false,
        statuses: &[200, 401, 404, 409, 410, 500, 502, 503],
    },
    Route {
        id: RouteId::DeadLetters,
        method: "GET",
        template: "/api/v1/admin/dead-letters",
        access: Access::Admin,
        body: false,
        statuses: &[200, 400, 401, 500, 503],
    },
    Route {
        id: RouteId::Redrive,
        method: "POST",
        template: "/api/v1/admin/dead-letters/{id}/redrive",
        access: Access::Admin,
        body: false,
        statuses: &[200, 401, 404, 409, 500, 503],
    },
    Route {
        id: RouteId::Sweep,
        method: "POST",
        template: "/api/v1/admin/sweep",
        access: Access::Admin,
        body: false,
        statuses: &[200, 401, 500, 503],
    },
    Route {
        id: RouteId::RedriveAll,
        method: "POST",
        template: "/api/v1/admin/dead-letters/redrive",
        access: Access::Admin,
        body: false,
        statuses: &[200, 400, 401, 500, 503],
    },
    Route {
        id: RouteId::Backlog,
        method: "GET",
        template: "/api/v1/admin/backlog",
        access: Access::Admin,
        body: false,
        statuses: &[200, 401, 500, 503],
    },
];

/// The outcome of matching a request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// A route, with the `{id}` segment if the template has one.
    Found(&'static RouteId, Option<String>),
    /// The path exists with other methods.
    MethodNotAllowed(Vec<&'static str>),
    /// No such path.
    NotFound,
}

/// Whether `id` can be a job id: 1..=64 of `[A-Za-z0-9_-]`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn match_template(template: &str, path: &str) -> Option<Option<String>> {
    let mut id = None;
    let mut want = template.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some(id),
            (Some("{id}"), Some(segment)) if valid_id(segment) => id = Some(segment.to_string()),
            (Some(w), Some(h)) if w == h => {}
            _ => return None,
        }
    }
}

/// The route for `method` and `path` (no query string).
pub fn find(method: &str, path: &str) -> Match {
    let mut allowed = Vec::new();
    for route in ROUTES {
        if let Some(id) = match_template(route.template, path) {
            if route.method == method {
                return Match::Found(&route.id, id);
            }
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        Match::NotFound
    } else {
        Match::MethodNotAllowed(allowed)
    }
}

/// The route entry for `id`.
pub fn route(id: RouteId) -> &'static Route {
    ROUTES
        .iter()
        .find(|r| r.id == id)
        .expect("every route id is in ROUTES")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates_and_ids() {
        assert_eq!(
            find("GET", "/healthz"),
            Match::Found(&RouteId::Healthz, None)
        );
        assert_eq!(
            find("GET", "/api/v1/jobs/abc-123"),
            Match::Found(&RouteId::GetJob, Some("abc-123".into()))
        );
        assert_eq!(
            find("GET", "/api/v1/jobs/abc/result"),
            Match::Found(&RouteId::GetResult, Some("abc".into()))
        );
        assert_eq!(
            find("POST", "/api/v1/admin/dead-letters/x_1/redrive"),
            Match::Found(&RouteId::Redrive, Some("x_1".into()))
        );
    }

    #[test]
    fn unknown_paths_and_bad_ids_are_not_found() {
        for path in [
            "/",
            "/healthz/",
            "/api/v1/jobs/",
            "/api/v1/jobs//result",
            "/api/v1/jobs/a%20b",
            "/api/v1/jobs/a.b",
            "/api/v2/jobs",
            "/api/v1/jobs/abc/result/x",
        ] {
            assert_eq!(find("GET", path), Match::NotFound, "{path}");
        }
        let long = format!("/api/v1/jobs/{}", "a".repeat(65));
        assert_eq!(find("GET", &long), Match::NotFound);
    }

    #[test]
    fn wrong_methods_list_the_allowed_ones() {
        assert_eq!(
            find("GET", "/api/v1/jobs"),
            Match::MethodNotAllowed(vec!["POST"])
        );
        assert_eq!(
            find("DELETE", "/api/v1/jobs/x"),
            Match::MethodNotAllowed(vec!["GET"])
        );
        assert_eq!(
            find("HEAD", "/healthz"),
            Match::MethodNotAllowed(vec!["GET"])
        );
        assert_eq!(
            find("GET", "/api/v1/admin/sweep"),
            Match::MethodNotAllowed(vec!["POST"])
        );
    }

    #[test]
    fn routes_are_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(a.id != b.id && (a.method, a.template) != (b.method, b.template));
            }
        }
    }
}
