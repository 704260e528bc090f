//! Each job type end to end: submitted over HTTP, run by the `worker`
//! component, stored in Azurite; the stored result is checked byte for byte
//! against the core crate's own output for the same input.

use std::time::Duration;

use e2e::{test_png, text_job, thumbnail_job, Stack, DEMO_KEY};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);

fn expected(job_type: &str, input: &Value) -> platform_core::jobs::JobOutput {
    platform_core::jobs::find(job_type)
        .unwrap_or_else(|| panic!("{job_type} is registered"))
        .run(&input.to_string())
        .unwrap_or_else(|e| panic!("{job_type} runs natively: {e:?}"))
}

/// Submit `body`, wait for success and check the result against the core
/// crate's output, through the API and directly in Azurite.
fn run_and_check(stack: &Stack, body: Value) -> Value {
    let client = stack.platform.client();
    let id = client.submit_ok(DEMO_KEY, &body);
    let job = client.wait_final(DEMO_KEY, &id, WAIT);
    assert_eq!(
        job["status"],
        "succeeded",
        "{job}\n{}",
        stack.platform.all_logs()
    );
    assert_eq!(job["attempts"], 1, "{job}");

    let want = expected(body["type"].as_str().unwrap(), &body["input"]);
    let via_api = client.get(&format!("/api/v1/jobs/{id}/result"), DEMO_KEY);
    assert_eq!(via_api.status, 200);
    assert_eq!(via_api.header("content-type"), Some(want.content_type));
    assert_eq!(
        via_api.body, want.bytes,
        "API result differs from the core output"
    );

    let blob = format!("demo/{id}.{}", want.extension);
    let (content_type, bytes) = stack
        .azurite
        .read_blob(&blob)
        .unwrap_or_else(|| panic!("blob {blob} not in Azurite"));
    assert_eq!(content_type, want.content_type);
    assert_eq!(
        bytes, want.bytes,
        "stored blob differs from the core output"
    );
    job
}

#[test]
fn text_stats_small_and_100_kib() {
    let stack = Stack::start();
    run_and_check(&stack, text_job("Hello, hello world! It's a small world."));
    run_and_check(
        &stack,
        json!({"type": "text-stats", "input": {"text": "lorem ipsum dolor sit amet ".repeat(100 * 1024 / 27), "top_n": 3}}),
    );
    // Unicode: characters are counted as scalar values, not bytes.
    run_and_check(&stack, text_job("naïve café — déjà vu ✓\nzweite Zeile"));
}

#[test]
fn thumbnail_png_and_jpeg() {
    let stack = Stack::start();
    let png = test_png(640, 480);
    let job = run_and_check(&stack, thumbnail_job(&png, 128, 128));
    assert!(
        job["result"].is_object() || job["links"].is_object(),
        "{job}"
    );

    // A JPEG input, encoded here, is stored as PNG too.
    let rgb = image::load_from_memory(&png).unwrap().to_rgb8();
    let mut jpeg = std::io::Cursor::new(Vec::new());
    rgb.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    run_and_check(&stack, thumbnail_job(jpeg.get_ref(), 100, 50));

    // Never upscaled: a small image within the bounds keeps its size.
    let small = test_png(20, 10);
    let body = thumbnail_job(&small, 400, 400);
    run_and_check(&stack, body.clone());
    let out = expected("thumbnail", &body["input"]);
    let decoded = image::load_from_memory(&out.bytes).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (20, 10));
}

#[test]
fn many_jobs_all_complete_once() {
    let stack = Stack::start();
    let client = stack.platform.client();
    let ids: Vec<String> = (0..40)
        .map(|i| client.submit_ok(DEMO_KEY, &text_job(&format!("job number {i}"))))
        .collect();
    for id in &ids {
        let job = client.wait_final(DEMO_KEY, id, WAIT);
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
    }
}
