//! Bounded under hostile input: what a request or a job may cost the
//! instance that serves it, end to end on the built components.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use e2e::{thumbnail_job, Azurite, Platform, PlatformOptions, RedisServer, ADMIN_TOKEN, DEMO_KEY};
use image::ImageFormat;
use platform_core::jobs::thumbnail::plan;

const MIB: usize = 1024 * 1024;
/// The API's instance memory limit on the cluster.
const API_INSTANCE_MEMORY: usize = 64 * MIB;
/// The worker's instance memory limit on the cluster.
const WORKER_INSTANCE_MEMORY: usize = 128 * MIB;
/// The largest body the API accepts (`max_body_bytes`' default).
const MAX_BODY: usize = 8 * MIB;

/// Start components with a per-instance memory limit (`--max-instance-memory`,
/// on Spin and on the local runtime alike).
fn start_limited(
    redis: &RedisServer,
    azurite: &Azurite,
    options: PlatformOptions,
    bytes: usize,
) -> Platform {
    Platform::start(redis, azurite, options.max_instance_memory(bytes))
}

/// A body of at most `len` bytes: `prefix`, then `unit` repeated (separated
/// by `separator`), then `suffix`.
fn filled(prefix: &str, unit: &str, separator: &str, suffix: &str, len: usize) -> Vec<u8> {
    let mut body = prefix.as_bytes().to_vec();
    let end = len - suffix.len();
    let mut first = true;
    while body.len() + unit.len() + separator.len() <= end {
        if !first {
            body.extend_from_slice(separator.as_bytes());
        }
        body.extend_from_slice(unit.as_bytes());
        first = false;
    }
    body.extend_from_slice(suffix.as_bytes());
    body
}

/// A PNG of noise (incompressible, so the PNG is about `side * side * 3` bytes).
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
        .expect("encode png");
    png
}

/// Send a request head that declares `declared` body bytes, then only a few
/// of them, keep the connection open and return the response's status line
/// if one arrives within `within`.
fn status_without_the_body(
    port: u16,
    method: &str,
    path: &str,
    auth: Option<&str>,
    within: Duration,
) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let declared = 1024 * 1024;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n"
    );
    if let Some(token) = auth {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(&[b' '; 64]).expect("write some body");
    stream.flush().expect("flush");
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .expect("set timeout");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                received.extend_from_slice(&buf[..n]);
                if let Some(end) = received.windows(2).position(|w| w == b"\r\n") {
                    return Some(String::from_utf8_lossy(&received[..end]).into_owned());
                }
            }
            Err(_) => break,
        }
    }
    None
}

#[test]
fn bodies_are_not_read_before_authentication_or_for_routes_without_one() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let api = Platform::start(&redis, &azurite, PlatformOptions::api_only());
    let within = Duration::from_secs(5);
    // Each request declares a 1 MiB body and sends 64 bytes of it: the API
    // answers at once, because it never waits for (or buffers) that body.
    let cases = [
        ("POST", "/api/v1/jobs", None, "401"),
        ("POST", "/api/v1/jobs", Some("not-a-key"), "401"),
        ("POST", "/api/v1/jobs", Some(ADMIN_TOKEN), "401"),
        ("POST", "/api/v1/unknown", Some(DEMO_KEY), "404"),
        ("PUT", "/api/v1/jobs", Some(DEMO_KEY), "405"),
        ("POST", "/api/v1/admin/sweep", Some(ADMIN_TOKEN), "200"),
        ("POST", "/api/v1/admin/sweep", Some(DEMO_KEY), "401"),
    ];
    for (method, path, auth, status) in cases {
        let line = status_without_the_body(api.port, method, path, auth, within);
        let line = line.unwrap_or_else(|| {
            panic!(
                "{method} {path}: no response within {within:?}: the body is being read\n{}",
                api.runtime_log()
            )
        });
        assert!(
            line.starts_with("HTTP/1.1 ") && line[9..].starts_with(status),
            "{method} {path}: {line}"
        );
    }
    // An authenticated submit does wait for its body.
    assert_eq!(
        status_without_the_body(
            api.port,
            "POST",
            "/api/v1/jobs",
            Some(DEMO_KEY),
            Duration::from_secs(2)
        ),
        None
    );
}

#[test]
fn hostile_and_maximal_bodies_fit_a_64_mib_api_instance() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let api = start_limited(
        &redis,
        &azurite,
        PlatformOptions::api_only(),
        API_INSTANCE_MEMORY,
    );
    let client = api.client();
    let image = base64::engine::general_purpose::STANDARD.encode(noise_png(1400));
    let thumbnail = format!(
        r#"{{"type":"thumbnail","input":{{"image":"{image}","max_width":64,"max_height":64}}}}"#
    )
    .into_bytes();
    let cases = [
        ("a maximal thumbnail", thumbnail, 202),
        (
            "a maximal text",
            filled(
                r#"{"type":"text-stats","input":{"text":""#,
                "ab cd ",
                "",
                r#""}}"#,
                MAX_BODY,
            ),
            202,
        ),
        (
            "an input of 2.8 million empty objects",
            filled(
                r#"{"type":"text-stats","input":["#,
                "{}",
                ",",
                "]}",
                MAX_BODY,
            ),
            422,
        ),
        (
            "a body of 1.6 million unknown members",
            filled(r#"{"type":"text-stats","#, r#""a":0"#, ",", "}", MAX_BODY),
            422,
        ),
        // Nesting is refused by the parser's depth limit (128) long before
        // it could exhaust the component's 256 KiB stack.
        (
            "an input nested 4 million arrays deep",
            filled(r#"{"type":"text-stats","input":"#, "[", "", "", MAX_BODY),
            400,
        ),
        (
            "an input nested 120 objects deep",
            format!(
                r#"{{"type":"text-stats","input":{}1{}}}"#,
                r#"{"a":"#.repeat(120),
                "}".repeat(120)
            )
            .into_bytes(),
            422,
        ),
    ];
    let auth = format!("Bearer {DEMO_KEY}");
    for (name, body, status) in cases {
        assert!(body.len() <= MAX_BODY, "{name}: {} bytes", body.len());
        let reply = client.request(
            "POST",
            "/api/v1/jobs",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(&body),
        );
        assert_eq!(
            reply.status,
            status,
            "{name}: {}\n{}",
            String::from_utf8_lossy(&reply.body[..reply.body.len().min(500)]),
            api.all_logs()
        );
    }
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

/// A PNG of only its header and an empty IDAT chunk: all the API reads
/// before accepting an image.
fn png_header(side: u32, depth: u8, color: u8) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png.extend_from_slice(&0u32.to_be_bytes());
    png.extend_from_slice(b"IDAT");
    png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
    png
}

/// A `side`x`side` 8-bit RGB image in `format` (a gradient: small when compressed).
fn rgb_image(side: u32, format: ImageFormat) -> Vec<u8> {
    let image = image::RgbImage::from_fn(side, side, |x, y| {
        image::Rgb([(x * 255 / side) as u8, (y * 255 / side) as u8, 128])
    });
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), format)
        .expect("encode");
    assert!(
        out.len() < MAX_BODY * 3 / 4 - 1024,
        "{format:?} {side}: {} bytes",
        out.len()
    );
    out
}

/// The largest square 8-bit RGB image in `format` that the API accepts
/// for a thumbnail within `bound`x`bound`.
fn largest_accepted(format: ImageFormat, bound: u32) -> u32 {
    let header = |side: u32| match format {
        ImageFormat::Png => png_header(side, 8, 2),
        _ => {
            let mut jpeg = rgb_image(16, format);
            let sof = jpeg
                .windows(2)
                .position(|w| w == [0xff, 0xc0])
                .expect("SOF0");
            jpeg[sof + 5..sof + 9].copy_from_slice(&[
                (side >> 8) as u8,
                side as u8,
                (side >> 8) as u8,
                side as u8,
            ]);
            jpeg
        }
    };
    let (mut low, mut high) = (16u32, 6400u32);
    while high - low > 1 {
        let mid = (low + high) / 2;
        if plan(&header(mid), bound, bound).is_ok() {
            low = mid;
        } else {
            high = mid;
        }
    }
    low
}

#[test]
fn thumbnails_fit_a_128_mib_worker_instance() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let api = Platform::start(&redis, &azurite, PlatformOptions::api_only());
    let worker = start_limited(
        &redis,
        &azurite,
        PlatformOptions::worker_only(),
        WORKER_INSTANCE_MEMORY,
    );
    let client = api.client();

    // Small files that decode to far more than the worker may hold: 6324x6324
    // 8-bit RGB (120 MB decoded), 4000x4000 16-bit RGBA (128 MB). Refused
    // at submit, from the header.
    for (side, depth, color) in [(6324, 8, 2), (4000, 16, 6)] {
        let reply = client.submit(
            DEMO_KEY,
            &thumbnail_job(&png_header(side, depth, color), 256, 256),
        );
        let problem = reply.assert_problem(422);
        assert_eq!(problem["errors"][0]["pointer"], "/input/image", "{problem}");
        assert!(problem["detail"].is_string());
    }

    // The largest images it accepts, scaled down and kept at their size,
    // run to completion in a worker limited to 128 MiB.
    let mut ids = Vec::new();
    for (format, bound) in [
        (ImageFormat::Png, 64),
        (ImageFormat::Jpeg, 256),
        (ImageFormat::Png, 4096),
    ] {
        let side = largest_accepted(format, bound);
        let image = rgb_image(side, format);
        let id = client.submit_ok(DEMO_KEY, &thumbnail_job(&image, bound, bound));
        ids.push((format, side, bound, id));
    }
    for (format, side, bound, id) in ids {
        let job = client.wait_final(DEMO_KEY, &id, Duration::from_secs(300));
        assert_eq!(
            job["status"],
            "succeeded",
            "{format:?} {side}x{side} to {bound}: {job}\n{}",
            worker.all_logs()
        );
        assert_eq!(job["attempts"], 1, "{job}");
    }
}

/// The memory limit is enforced, not only set: an instance whose memory
/// cannot even reach its initial size fails, and the runtime answers `500`
/// with an empty body (Spin 3.6.3 and the local runtime alike), so the tests
/// above that stay within a limit prove the limit was enough.
#[test]
fn an_instance_that_cannot_get_its_memory_fails() {
    let redis = RedisServer::start();
    let azurite = Azurite::start();
    let platform = start_limited(&redis, &azurite, PlatformOptions::api_only(), 64 * 1024);
    let reply = platform.client().request("GET", "/healthz", &[], None);
    assert_eq!(
        reply.status,
        500,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(reply.body.is_empty());
}
