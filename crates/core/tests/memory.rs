//! What one request costs in memory: the API's peak heap while it handles
//! the largest and the most hostile bodies it accepts, measured with a
//! counting allocator around `api::handle` (the body itself included).
//! The `api` component runs with a 64 MiB instance limit; the core's heap
//! must stay well inside it.

#![cfg(feature = "native")]

mod common;

use base64::Engine as _;
use peak_alloc::PeakAlloc;
use platform_core::api::{self, ApiConfig, ApiContext, ApiRequest, DEFAULT_MAX_BODY_BYTES};
use platform_core::native::{block_on, NativeHttp, NativeRedis};
use platform_core::ports::{Redis, RedisArg, RedisError, RedisValue};
use std::sync::atomic::{AtomicUsize, Ordering};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const MIB: usize = 1024 * 1024;
const DEMO: &str = "demo-key-0123456789";

/// The highest peak seen in the segments measured so far (see [`SpinLikeRedis`]).
static SEEN: AtomicUsize = AtomicUsize::new(0);

/// Peak bytes live while `f` runs, above what was live before, plus `extra`
/// (what `f` takes ownership of).
fn peak_of<T>(extra: usize, f: impl FnOnce() -> T) -> (usize, T) {
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    SEEN.store(0, Ordering::SeqCst);
    let out = f();
    let peak = SEEN.load(Ordering::SeqCst).max(HEAP.peak_usage());
    (peak - before + extra, out)
}

/// Redis as the `api` component sees it: the Spin adapter copies the
/// arguments once (counted here), then the host sends them. The native
/// client's own buffers stand in for the host's and are not the instance's
/// memory, so the peak inside the call is left out.
struct SpinLikeRedis(NativeRedis);

impl Redis for SpinLikeRedis {
    fn execute(&self, command: &str, args: &[RedisArg]) -> Result<Vec<RedisValue>, RedisError> {
        let copy = args.to_vec();
        SEEN.fetch_max(HEAP.peak_usage(), Ordering::SeqCst);
        let reply = self.0.execute(command, &copy);
        drop(copy);
        HEAP.reset_peak_usage();
        reply
    }
}

fn config(test: &str) -> ApiConfig {
    let vars = [
        ("api_keys", format!("demo:{DEMO}")),
        ("admin_token", "admin-token-0123456789".to_string()),
        ("blob_endpoint", common::azurite_endpoint()),
        ("blob_account", "devstoreaccount1".into()),
        ("blob_container", "results".into()),
        ("blob_auth", "shared-key".into()),
        ("blob_credential", common::AZURITE_KEY.into()),
    ];
    let mut config = ApiConfig::from_lookup(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })
    .expect("test configuration is valid");
    config.pipeline = common::pipeline_config(test);
    assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    config
}

fn submission(body: Vec<u8>) -> ApiRequest {
    ApiRequest {
        method: "POST".into(),
        path: "/api/v1/jobs".into(),
        headers: vec![
            ("authorization".into(), format!("Bearer {DEMO}")),
            ("content-type".into(), "application/json".into()),
        ],
        body,
        ..ApiRequest::default()
    }
}

/// A body of exactly `len` bytes: `prefix`, `unit` repeated, `suffix`.
fn filled(prefix: &str, unit: &str, separator: &str, suffix: &str, len: usize) -> Vec<u8> {
    let mut body = prefix.as_bytes().to_vec();
    let room = len - prefix.len() - suffix.len();
    let mut first = true;
    while body.len() + unit.len() + separator.len() <= prefix.len() + room {
        if !first {
            body.extend_from_slice(separator.as_bytes());
        }
        body.extend_from_slice(unit.as_bytes());
        first = false;
    }
    body.extend_from_slice(suffix.as_bytes());
    body
}

/// A PNG of noise (incompressible), about `side * side * 3` bytes.
fn noise_png(side: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let image = image::RgbImage::from_fn(side, side, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let b = state.to_le_bytes();
        image::Rgb([b[0], b[1], b[2]])
    });
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

#[test]
fn no_request_holds_more_than_a_few_copies_of_its_body() {
    let config = config("memory");
    let redis_url = common::redis_url();
    common::redis();
    let open = || NativeRedis::new(&redis_url).map(SpinLikeRedis);
    let ctx: ApiContext<'_, SpinLikeRedis, NativeHttp> = ApiContext {
        config: &config,
        redis: &open,
        http: &NativeHttp::default(),
    };
    let limit = config.max_body_bytes;

    let png = noise_png(1400);
    let image = base64::engine::general_purpose::STANDARD.encode(&png);
    drop(png);
    let thumbnail = format!(
        r#"{{"type":"thumbnail","input":{{"image":"{image}","max_width":64,"max_height":64}}}}"#
    )
    .into_bytes();
    drop(image);
    assert!(thumbnail.len() > limit - MIB && thumbnail.len() <= limit);

    let text = filled(
        r#"{"type":"text-stats","input":{"text":""#,
        "ab cd ",
        "",
        r#""}}"#,
        limit,
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("valid maximal thumbnail", thumbnail, 202),
        ("valid maximal text", text, 202),
        (
            "input array of empty objects",
            filled(r#"{"type":"text-stats","input":["#, "{}", ",", "]}", limit),
            422,
        ),
        (
            "body array of empty objects",
            filled("[", "{}", ",", "]", limit),
            422,
        ),
        (
            "unknown members",
            filled(r#"{"type":"text-stats","#, r#""a":0"#, ",", "}", limit),
            422,
        ),
        (
            "text of empty objects",
            filled(
                r#"{"type":"text-stats","input":{"text":["#,
                "{}",
                ",",
                "]}}",
                limit,
            ),
            422,
        ),
    ];
    let mut report = Vec::new();
    for (name, body, status) in cases {
        assert!(body.len() <= limit, "{name}: {} bytes", body.len());
        let len = body.len();
        let (peak, response) = peak_of(len, || block_on(api::handle(submission(body), &ctx)));
        assert_eq!(
            response.status,
            status,
            "{name}: {}",
            String::from_utf8_lossy(&response.body)
        );
        report.push(format!(
            "{name}: body {:.1} MiB, peak {:.1} MiB",
            len as f64 / MIB as f64,
            peak as f64 / MIB as f64
        ));
        // The body, the canonical input that is stored, one copy in the
        // Redis command, and decoded image bytes while the header is read.
        assert!(peak <= 4 * limit, "{}", report.join("\n"));
    }
    println!("{}", report.join("\n"));
}
