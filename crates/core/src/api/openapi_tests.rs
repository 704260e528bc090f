//! The OpenAPI document and the router must agree.

use std::collections::BTreeSet;

use serde_json::Value;

use super::routes::{Access, ROUTES};
use super::OPENAPI_JSON;

fn document() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json is valid JSON")
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[test]
fn is_openapi_3_1() {
    let doc = document();
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
}

#[test]
fn documents_exactly_the_routed_operations() {
    let doc = document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (key, _) in item.as_object().unwrap() {
            if METHODS.contains(&key.as_str()) {
                documented.insert((key.to_uppercase(), path.clone()));
            }
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.template.to_string()))
        .collect();
    assert_eq!(documented, routed);
}

#[test]
fn documents_exactly_the_statuses_each_route_returns() {
    let doc = document();
    for route in ROUTES {
        let operation = &doc["paths"][route.template][route.method.to_lowercase()];
        let documented: BTreeSet<u16> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        let returned: BTreeSet<u16> = route.statuses.iter().copied().collect();
        assert_eq!(documented, returned, "{} {}", route.method, route.template);
    }
}

#[test]
fn security_matches_route_access() {
    let doc = document();
    for route in ROUTES {
        let security = &doc["paths"][route.template][route.method.to_lowercase()]["security"];
        let expected = match route.access {
            Access::Open => serde_json::json!([]),
            Access::Tenant => serde_json::json!([{ "apiKey": [] }]),
            Access::Admin => serde_json::json!([{ "adminToken": [] }]),
        };
        assert_eq!(security, &expected, "{} {}", route.method, route.template);
    }
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => refs.push(target.clone()),
                    ("mapping", Value::Object(mapping)) => refs.extend(
                        mapping
                            .values()
                            .filter_map(|v| v.as_str().map(str::to_string)),
                    ),
                    _ => collect_refs(value, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for target in refs {
        let pointer = target.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "unresolved {target}");
    }
}

#[test]
fn submission_schema_covers_every_job_type() {
    let doc = document();
    let mapping = doc["components"]["schemas"]["JobSubmission"]["discriminator"]["mapping"]
        .as_object()
        .unwrap();
    let documented: BTreeSet<&str> = mapping.keys().map(String::as_str).collect();
    let registered: BTreeSet<&str> = crate::jobs::names().collect();
    assert_eq!(documented, registered);
    for (name, target) in mapping {
        let schema = doc
            .pointer(target.as_str().unwrap().trim_start_matches('#'))
            .unwrap();
        assert_eq!(schema["properties"]["type"]["const"], name.as_str());
    }
}

#[test]
fn error_responses_are_problems_and_all_carry_the_request_id() {
    let doc = document();
    let resolve = |value: &Value| -> Value {
        match value["$ref"].as_str() {
            Some(target) => doc.pointer(target.trim_start_matches('#')).unwrap().clone(),
            None => value.clone(),
        }
    };
    for route in ROUTES {
        let responses = &doc["paths"][route.template][route.method.to_lowercase()]["responses"];
        for (status, response) in responses.as_object().unwrap() {
            let response = resolve(response);
            assert!(
                response["headers"]["X-Request-Id"].is_object(),
                "{} {status}",
                route.template
            );
            let content = response["content"].as_object().unwrap();
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{} {status}",
                    route.template
                );
            }
            let headers = &response["headers"];
            match status.as_str() {
                "401" => assert!(headers["WWW-Authenticate"].is_object()),
                "503" => assert!(headers["Retry-After"].is_object()),
                "202" => assert!(headers["Location"].is_object()),
                _ => {}
            }
        }
    }
}

#[test]
fn submission_examples_are_accepted_by_their_job_types() {
    let doc = document();
    let examples = doc["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]
        ["application/json"]["examples"]
        .as_object()
        .unwrap();
    let mut covered = BTreeSet::new();
    for (name, example) in examples {
        let value = &example["value"];
        let job_type = value["type"].as_str().unwrap();
        let kind = crate::jobs::find(job_type).unwrap();
        kind.validate(&value["input"].to_string())
            .unwrap_or_else(|e| panic!("example {name}: {e}"));
        covered.insert(job_type);
    }
    assert_eq!(covered, crate::jobs::names().collect());
}
