//! HTTP route matching with Spin 3.6's rules (`crates/http/src/routes.rs`):
//! exact routes, `:name` segments, trailing `/...` (or `/*`) wildcards; an
//! exact route beats a wildcard and a longer wildcard prefix beats a shorter
//! one. Duplicate routes: the last one wins, as in Spin.

use std::fmt;

use anyhow::{bail, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Lit(String),
    Param(String),
}

#[derive(Clone, Debug)]
struct Route {
    component: String,
    /// The route as written in the manifest.
    raw: String,
    /// Sanitised (leading `/`, no trailing `/`), with the wildcard suffix.
    based: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

/// The routes of the HTTP trigger.
#[derive(Clone, Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
}

/// A successful match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    pub component: String,
    /// `spin-matched-route`: the route including the (always `/`) base.
    pub based_route: String,
    /// `spin-raw-component-route`: the route as written.
    pub raw_route: String,
    /// `spin-component-route`: the raw route without `/...`.
    pub component_route: String,
    /// `spin-path-info`: the part of the path the wildcard matched.
    pub path_info: String,
    /// `spin-path-match-<name>` values.
    pub params: Vec<(String, String)>,
}

fn sanitize(route: &str) -> String {
    let abs = if route.starts_with('/') {
        route.to_string()
    } else {
        format!("/{route}")
    };
    abs.strip_suffix('/').map(str::to_string).unwrap_or(abs)
}

impl Router {
    /// Builds the router from `(route, component)` pairs in manifest order.
    pub fn build<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut out: Vec<Route> = Vec::new();
        for (raw, component) in routes {
            let based = sanitize(raw);
            let (prefix, wildcard) = if let Some(p) = based.strip_suffix("/...") {
                (p.to_string(), true)
            } else if let Some(p) = based.strip_suffix("/*") {
                (p.to_string(), true)
            } else if based == "/..." {
                (String::new(), true)
            } else {
                (based.clone(), false)
            };
            let mut segments = Vec::new();
            for seg in prefix.split('/').filter(|s| !s.is_empty()) {
                if seg.contains("...") || seg.contains('*') {
                    bail!("Error parsing route {raw} associated with component {component}: wildcards are only allowed at the end of a route");
                }
                segments.push(match seg.strip_prefix(':') {
                    Some(name) if !name.is_empty() => Segment::Param(name.to_string()),
                    Some(_) => bail!("Error parsing route {raw} associated with component {component}: empty parameter name"),
                    None => Segment::Lit(seg.to_string()),
                });
            }
            let route = Route {
                component: component.to_string(),
                raw: raw.to_string(),
                based,
                segments,
                wildcard,
            };
            // Duplicates: the later route replaces the earlier in place.
            if let Some(existing) = out.iter_mut().find(|r| r.raw == route.raw) {
                eprintln!(
                    "Warning: route {} of component {} is a duplicate and will never be used (duplicate of {})",
                    existing.raw, existing.component, route.component
                );
                *existing = route;
            } else {
                out.push(route);
            }
        }
        Ok(Self { routes: out })
    }

    /// Routes for the start-up listing: `(display, component)`.
    pub fn listing(&self) -> Vec<(String, String)> {
        self.routes
            .iter()
            .map(|r| (RouteDisplay(r).to_string(), r.component.clone()))
            .collect()
    }

    /// The best route for `path`, or `None` (Spin answers 404).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let path_segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut best: Option<(Score, &Route, Params)> = None;
        for r in &self.routes {
            if r.wildcard {
                if path_segments.len() < r.segments.len() {
                    continue;
                }
            } else if path_segments.len() != r.segments.len() {
                continue;
            }
            let mut params = Vec::new();
            let ok = r.segments.iter().zip(&path_segments).all(|(s, p)| match s {
                Segment::Lit(l) => l == p,
                Segment::Param(n) => {
                    params.push((n.clone(), (*p).to_string()));
                    true
                }
            });
            if !ok {
                continue;
            }
            let score = Score {
                exact: !r.wildcard,
                len: r.segments.len(),
                literals: r
                    .segments
                    .iter()
                    .map(|s| matches!(s, Segment::Lit(_)))
                    .collect(),
            };
            if best.as_ref().is_none_or(|(b, _, _)| score > *b) {
                best = Some((score, r, params));
            }
        }
        let (_, r, params) = best?;
        let path_info = if r.wildcard {
            let rest = path_segments[r.segments.len()..].join("/");
            match (rest.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_string(),
                (false, false) => format!("/{rest}"),
                (false, true) => format!("/{rest}/"),
            }
        } else {
            String::new()
        };
        Some(RouteMatch {
            component: r.component.clone(),
            based_route: r.based.clone(),
            raw_route: r.raw.clone(),
            component_route: r.raw.strip_suffix("/...").unwrap_or(&r.raw).to_string(),
            path_info,
            params,
        })
    }
}

type Params = Vec<(String, String)>;

/// Ranking: exact routes first, then the longest prefix, then literal
/// segments before parameters, position by position.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    exact: bool,
    len: usize,
    literals: Vec<bool>,
}

struct RouteDisplay<'a>(&'a Route);

impl fmt::Display for RouteDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        if r.wildcard {
            let prefix = r
                .based
                .strip_suffix("/...")
                .or_else(|| r.based.strip_suffix("/*"))
                .unwrap_or("");
            write!(f, "{prefix} (wildcard)")
        } else {
            write!(f, "{}", r.based)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::build(routes.iter().copied()).unwrap()
    }

    #[test]
    fn exact_and_wildcards() {
        let r = router(&[("/foo", "foo"), ("/foo/bar", "foobar")]);
        assert_eq!(r.route("/foo").unwrap().component, "foo");
        assert_eq!(r.route("/foo/bar").unwrap().component, "foobar");
        assert!(r.route("/foo/baz").is_none());
        assert!(r.route("/").is_none());

        let r = router(&[("/...", "all")]);
        for p in ["/foo/bar", "/abc/", "/", "/this/should/be/captured"] {
            assert_eq!(r.route(p).unwrap().component, "all", "{p}");
        }
    }

    #[test]
    fn most_specific_wins() {
        for order in [
            vec![
                ("/one/...", "1"),
                ("/one/two/...", "2"),
                ("/one/two/three/...", "3"),
            ],
            vec![
                ("/one/two/three/...", "3"),
                ("/one/two/...", "2"),
                ("/one/...", "1"),
            ],
        ] {
            let r = router(&order);
            assert_eq!(r.route("/one/two/three/four").unwrap().component, "3");
            assert_eq!(r.route("/one/two/x").unwrap().component, "2");
            assert_eq!(r.route("/one").unwrap().component, "1");
        }
        let r = router(&[("/one", "exact"), ("/...", "wild")]);
        assert_eq!(r.route("/one").unwrap().component, "exact");
        assert_eq!(r.route("/one/x").unwrap().component, "wild");
    }

    #[test]
    fn project_routes() {
        let r = router(&[("/...", "api"), ("/worker/...", "worker-health")]);
        let m = r.route("/worker/readyz").unwrap();
        assert_eq!(m.component, "worker-health");
        assert_eq!(m.path_info, "/readyz");
        assert_eq!(m.component_route, "/worker");
        assert_eq!(m.raw_route, "/worker/...");
        assert_eq!(m.based_route, "/worker/...");
        assert_eq!(r.route("/worker").unwrap().component, "worker-health");
        assert_eq!(r.route("/workers").unwrap().component, "api");
        let m = r.route("/api/v1/jobs").unwrap();
        assert_eq!(m.component, "api");
        assert_eq!(m.path_info, "/api/v1/jobs");
        assert_eq!(m.component_route, "");
        assert_eq!(
            r.listing(),
            vec![
                (" (wildcard)".to_string(), "api".to_string()),
                (
                    "/worker (wildcard)".to_string(),
                    "worker-health".to_string()
                )
            ]
        );
    }

    #[test]
    fn path_info_trailing_slashes() {
        let r = router(&[("/foo/...", "c")]);
        assert_eq!(r.route("/foo").unwrap().path_info, "");
        assert_eq!(r.route("/foo/").unwrap().path_info, "/");
        assert_eq!(r.route("/foo/bar").unwrap().path_info, "/bar");
        assert_eq!(r.route("/foo/bar/").unwrap().path_info, "/bar/");
    }

    #[test]
    fn named_params() {
        let r = router(&[("/foo/:userid/...", "c"), ("/foo/me/...", "me")]);
        let m = r.route("/foo/42/bar").unwrap();
        assert_eq!(m.component, "c");
        assert_eq!(m.params, vec![("userid".to_string(), "42".to_string())]);
        assert_eq!(m.path_info, "/bar");
        assert_eq!(m.component_route, "/foo/:userid");
        assert_eq!(r.route("/foo/me/bar").unwrap().component, "me");
    }

    #[test]
    fn duplicates_last_wins_and_bad_routes() {
        let r = router(&[("/a", "first"), ("/a", "second")]);
        assert_eq!(r.route("/a").unwrap().component, "second");
        assert!(Router::build([("/a/.../b", "x")]).is_err());
        assert_eq!(router(&[("a/", "x")]).route("/a").unwrap().component, "x");
    }
}
