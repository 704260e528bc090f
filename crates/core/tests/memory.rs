//! What one request or one job costs in memory, measured with a counting
//! allocator: the API's peak heap while it handles the largest and the most
//! hostile bodies it accepts (the `api` component's instance limit is
//! 64 MiB), and a thumbnail's peak heap at the edge of what the API accepts
//! (the worker's is 128 MiB). The tests take turns: the counter is global.

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

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn no_request_holds_more_than_a_few_copies_of_its_body() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
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

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Just the header of a `side`x`side` image: enough for `thumbnail::plan`.
fn header(format: image::ImageFormat, side: u32, color: image::ColorType) -> Vec<u8> {
    match format {
        image::ImageFormat::Png => {
            let (depth, kind) = match color {
                image::ColorType::L8 => (8, 0),
                image::ColorType::Rgb8 => (8, 2),
                image::ColorType::Rgba8 => (8, 6),
                image::ColorType::Rgb16 => (16, 2),
                image::ColorType::Rgba16 => (16, 6),
                other => panic!("{other:?}"),
            };
            let mut ihdr = b"IHDR".to_vec();
            ihdr.extend_from_slice(&side.to_be_bytes());
            ihdr.extend_from_slice(&side.to_be_bytes());
            ihdr.extend_from_slice(&[depth, kind, 0, 0, 0]);
            let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
            png.extend_from_slice(&13u32.to_be_bytes());
            png.extend_from_slice(&ihdr);
            png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
            png.extend_from_slice(&0u32.to_be_bytes());
            png.extend_from_slice(b"IDAT");
            png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
            png
        }
        _ => {
            // A real 16x16 JPEG with its frame header's size patched.
            let mut jpeg = encode(&image(16, color), format);
            let sof = jpeg.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
            jpeg[sof + 5..sof + 7].copy_from_slice(&(side as u16).to_be_bytes());
            jpeg[sof + 7..sof + 9].copy_from_slice(&(side as u16).to_be_bytes());
            jpeg
        }
    }
}

/// A smooth `side`x`side` image of colour type `color`.
fn image(side: u32, color: image::ColorType) -> image::DynamicImage {
    let rgb = image::Rgb32FImage::from_fn(side, side, |x, y| {
        let (x, y) = (x as f32 / side as f32, y as f32 / side as f32);
        image::Rgb([x, y, (x + y) / 2.0])
    });
    let image = image::DynamicImage::ImageRgb32F(rgb);
    match color {
        image::ColorType::L8 => image.to_luma8().into(),
        image::ColorType::Rgb8 => image.to_rgb8().into(),
        image::ColorType::Rgba8 => image.to_rgba8().into(),
        image::ColorType::Rgb16 => image.to_rgb16().into(),
        image::ColorType::Rgba16 => image.to_rgba16().into(),
        other => panic!("{other:?}"),
    }
}

fn encode(image: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), format)
        .unwrap();
    out
}

#[test]
fn an_accepted_thumbnail_stays_within_its_working_set() {
    use image::{ColorType, ImageFormat};
    use platform_core::jobs::thumbnail::{plan, MAX_WORKING_SET};
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let thumbnail = platform_core::jobs::find("thumbnail").unwrap();
    let cases = [
        (ImageFormat::Png, ColorType::Rgb8, 64),
        (ImageFormat::Png, ColorType::Rgba16, 64),
        (ImageFormat::Png, ColorType::Rgb8, 4096),
        (ImageFormat::Jpeg, ColorType::Rgb8, 256),
        (ImageFormat::Jpeg, ColorType::L8, 256),
    ];
    let mut report = Vec::new();
    for (format, color, bound) in cases {
        // The largest square the API accepts.
        let accepted = |side: u32| plan(&header(format, side, color), bound, bound).is_ok();
        let (mut low, mut high) = (16u32, 6400u32);
        assert!(accepted(low) && !accepted(high));
        while high - low > 1 {
            let mid = (low + high) / 2;
            if accepted(mid) {
                low = mid
            } else {
                high = mid
            }
        }
        let bytes = encode(&image(low, color), format);
        let working_set = plan(&bytes, bound, bound).unwrap().working_set;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let input = format!(r#"{{"image":"{encoded}","max_height":{bound},"max_width":{bound}}}"#);
        drop((bytes, encoded));
        thumbnail.validate(&input).unwrap();
        let (peak, output) = peak_of(0, || thumbnail.run(&input));
        output.unwrap();
        let compressed = input.len() * 3 / 4;
        report.push(format!(
            "{format:?} {color:?} {low}x{low} to {bound}: peak {:.1} MiB, planned {:.1} MiB (+{:.1} MiB compressed)",
            peak as f64 / MIB as f64,
            working_set as f64 / MIB as f64,
            compressed as f64 / MIB as f64
        ));
        assert!(
            peak as u64 <= working_set + compressed as u64 + MIB as u64,
            "{}",
            report.join("\n")
        );
        assert!(working_set <= MAX_WORKING_SET);
    }
    println!("{}", report.join("\n"));
}
