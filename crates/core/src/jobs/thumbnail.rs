//! `thumbnail`: a PNG or JPEG image scaled down to fit a bounding box, as PNG.
//!
//! Input: `{"image": base64 (standard alphabet, padded) PNG or JPEG,
//! "max_width": 1..=4096, "max_height": 1..=4096}`.
//!
//! Output (`image/png`): the image scaled by
//! `min(max_width / width, max_height / height)`, each side rounded to the
//! nearest integer and at least 1, so the aspect ratio is kept. An image that
//! already fits is never upscaled: it is re-encoded at its own size. The
//! filter is `Triangle` (bilinear): smooth for downscaling at a fraction of
//! `Lanczos3`'s cost, and deterministic, so a re-run yields the same bytes.
//!
//! `validate` decodes the base64 and reads only the image header (format and
//! dimensions): images that are not PNG/JPEG or have more than
//! [`MAX_PIXELS`] pixels (decompression bombs) are rejected before they are
//! accepted. An input that passes `validate` but cannot be decoded in `run`
//! (a corrupt body) is a permanent failure.

use std::borrow::Cow;
use std::io::Cursor;

use base64::Engine as _;
use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, Limits};
use serde::Serialize;

use super::{
    canonical, input_members, integer_member, string_member, InputError, JobError, JobOutput,
    JobType,
};

/// The `thumbnail` job type.
pub struct Thumbnail;

/// The largest image accepted, in pixels (40 megapixels).
pub const MAX_PIXELS: u64 = 40_000_000;
/// The largest `max_width` / `max_height`.
pub const MAX_BOUND: u64 = 4096;
/// The most memory one thumbnail may need for its pixels (see [`plan`]):
/// the worker's instance limit is 128 MiB, and the rest holds the claimed
/// inputs (up to one message's job plus `CLAIM_BATCH_BYTES`), the image's
/// compressed bytes and the runtime.
pub const MAX_WORKING_SET: u64 = 64 * 1024 * 1024;

/// The input, typed; its fields in name order, so that it serializes canonically.
#[derive(Serialize)]
struct Input<'a> {
    image: Cow<'a, str>,
    max_height: u64,
    max_width: u64,
}

fn parse(input: &str) -> Result<Input<'_>, InputError> {
    let [image, max_width, max_height] =
        input_members(input, ["image", "max_width", "max_height"])?;
    let bound = |raw, name: &str| -> Result<u64, InputError> {
        integer_member(raw, name, 1, MAX_BOUND)?
            .ok_or_else(|| InputError::new(format!("/{name}"), "is required"))
    };
    Ok(Input {
        image: string_member(image, "image", "a base64 string")?,
        max_width: bound(max_width, "max_width")?,
        max_height: bound(max_height, "max_height")?,
    })
}

/// The image bytes of the base64 text.
fn decode(encoded: &str) -> Result<Vec<u8>, InputError> {
    base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .map_err(|_| {
            InputError::new(
                "/image",
                "is not valid base64 (standard alphabet, with padding)",
            )
        })
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, InputError> {
    let format = image::guess_format(bytes).ok();
    if !matches!(format, Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return Err(InputError::new("/image", "must be a PNG or JPEG image"));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(format.unwrap_or(ImageFormat::Png));
    Ok(reader)
}

/// What scaling one image costs, worked out from its header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The image's width.
    pub width: u32,
    /// The image's height.
    pub height: u32,
    /// The thumbnail's width.
    pub new_width: u32,
    /// The thumbnail's height.
    pub new_height: u32,
    /// Bytes per decoded pixel: channels times bytes per sample, at the
    /// depth the decoder produces (16-bit PNGs stay 16-bit, palettes expand).
    pub bytes_per_pixel: u64,
    /// The most bytes the worker holds at once for this image (see [`plan`]).
    pub working_set: u64,
}

fn unreadable() -> InputError {
    InputError::new("/image", "has an unreadable PNG/JPEG header")
}

/// Read the image's header and work out what scaling it within
/// `max_width`×`max_height` costs; reject it if that is more than
/// [`MAX_WORKING_SET`] or it has more than [`MAX_PIXELS`] pixels.
///
/// The working set is the largest of three phases, each counted at the
/// decoder's real bit depth and channel count:
/// - decoding: the decoded pixels, plus for a JPEG the compressed bytes the
///   decoder copies and, when it is progressive or its components are in
///   separate scans, a 16-bit coefficient for every sample of every
///   component (`zune-jpeg` keeps them all until the last scan);
/// - resizing (unless the image already fits): the decoded pixels, the
///   filter's intermediate (source width × thumbnail height, four `f32`
///   channels) and the thumbnail;
/// - encoding: the thumbnail, plus twice an incompressible PNG of it (the
///   compressed stream and the output).
pub fn plan(bytes: &[u8], max_width: u32, max_height: u32) -> Result<Plan, InputError> {
    use image::ImageDecoder as _;
    let format = image::guess_format(bytes).ok();
    let decoder = reader(bytes)?.into_decoder().map_err(|_| unreadable())?;
    let (width, height) = decoder.dimensions();
    let bytes_per_pixel = u64::from(decoder.color_type().bytes_per_pixel());
    drop(decoder);
    if width == 0 || height == 0 {
        return Err(InputError::new("/image", "has no pixels"));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(InputError::new(
            "/image",
            format!("is {width}x{height} pixels; the limit is {MAX_PIXELS} pixels"),
        ));
    }
    let (new_width, new_height) = fit(width, height, max_width, max_height);
    let decoded = pixels * bytes_per_pixel;
    let decoder_extra = match format {
        Some(ImageFormat::Jpeg) => bytes.len() as u64 + jpeg_coefficient_bytes(bytes),
        // Row buffers and the inflate window.
        _ => 4 * u64::from(width) * bytes_per_pixel + 64 * 1024,
    };
    let thumbnail = u64::from(new_width) * u64::from(new_height) * bytes_per_pixel;
    let resizing = if (new_width, new_height) == (width, height) {
        0
    } else {
        decoded + u64::from(width) * u64::from(new_height) * 16 + thumbnail
    };
    let png = thumbnail + thumbnail / 64 + u64::from(new_height) + 64 * 1024;
    let working_set = (decoded + decoder_extra)
        .max(resizing)
        .max(thumbnail + 2 * png);
    if working_set > MAX_WORKING_SET {
        return Err(InputError::new(
            "/image",
            format!(
                "is {width}x{height} pixels at {bytes_per_pixel} bytes per pixel; scaling it to \
                 {new_width}x{new_height} needs {} MiB, and the limit is {} MiB",
                working_set.div_ceil(1 << 20),
                MAX_WORKING_SET >> 20
            ),
        ));
    }
    Ok(Plan {
        width,
        height,
        new_width,
        new_height,
        bytes_per_pixel,
        working_set,
    })
}

/// What `zune-jpeg` holds besides the output while decoding `jpeg`: all the
/// coefficients (2 bytes per sample of each component, MCU-padded) when the
/// image is progressive or not interleaved in its first scan, else one MCU
/// row of them. A header it cannot follow counts as the worst case: four
/// full-resolution components.
fn jpeg_coefficient_bytes(jpeg: &[u8]) -> u64 {
    let be16 = |i: usize| {
        jpeg.get(i..i + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    // (progressive, width, height, sampling factors of each component)
    type Frame = (bool, u64, u64, Vec<(u64, u64)>);
    let mut frame: Option<Frame> = None;
    let mut i = 2;
    while let (Some(&0xff), Some(&marker)) = (jpeg.get(i), jpeg.get(i + 1)) {
        match marker {
            0xff => {
                i += 1;
                continue;
            }
            0x01 | 0xd0..=0xd8 => {
                i += 2;
                continue;
            }
            _ => {}
        }
        let Some(length) = be16(i + 2) else { break };
        let Some(segment) = jpeg.get(i + 4..i + 2 + length) else {
            break;
        };
        match marker {
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) && segment.len() >= 6 => {
                let height = u64::from(u16::from_be_bytes([segment[1], segment[2]]));
                let width = u64::from(u16::from_be_bytes([segment[3], segment[4]]));
                let components = (0..usize::from(segment[5]))
                    .filter_map(|c| segment.get(6 + 3 * c + 1))
                    .map(|s| (u64::from(s >> 4).max(1), u64::from(s & 15).max(1)))
                    .collect();
                let progressive = matches!(marker, 0xc2 | 0xc6 | 0xca | 0xce);
                frame = Some((progressive, width, height, components));
            }
            0xda => {
                let Some((progressive, width, height, components)) = frame else {
                    break;
                };
                let scan_components = segment.first().map_or(0, |n| usize::from(*n));
                let h_max = components.iter().map(|c| c.0).max().unwrap_or(1);
                let v_max = components.iter().map(|c| c.1).max().unwrap_or(1);
                let mcus_x = width.div_ceil(8 * h_max);
                let mcus_y = height.div_ceil(8 * v_max);
                let whole: u64 = components
                    .iter()
                    .map(|(h, v)| mcus_x * h * 8 * mcus_y * v * 8 * 2)
                    .sum();
                return if progressive || scan_components < components.len() {
                    whole
                } else {
                    whole / mcus_y.max(1)
                };
            }
            _ => {}
        }
        i += 2 + length;
    }
    let (width, height) = image::ImageReader::new(Cursor::new(jpeg))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .unwrap_or((u32::MAX, u32::MAX));
    let padded = |n: u32| u64::from(n).div_ceil(16) * 16;
    padded(width)
        .saturating_mul(padded(height))
        .saturating_mul(4 * 2)
}

/// The size of the thumbnail of a `width`×`height` image within the bounds.
pub fn fit(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    if width <= max_width && height <= max_height {
        return (width, height);
    }
    let scale = f64::min(
        f64::from(max_width) / f64::from(width),
        f64::from(max_height) / f64::from(height),
    );
    let side = |n: u32, max: u32| ((f64::from(n) * scale).round() as u32).clamp(1, max);
    (side(width, max_width), side(height, max_height))
}

impl JobType for Thumbnail {
    fn name(&self) -> &'static str {
        "thumbnail"
    }

    /// A decoded image may take most of a worker instance's memory.
    fn overlaps(&self) -> bool {
        false
    }

    fn validate(&self, input: &str) -> Result<String, InputError> {
        let parsed = parse(input)?;
        let bytes = decode(&parsed.image)?;
        plan(&bytes, parsed.max_width as u32, parsed.max_height as u32)?;
        drop(bytes);
        canonical(&parsed, input.len())
    }

    fn run(&self, input: &str) -> Result<JobOutput, JobError> {
        let invalid = |e: InputError| JobError::Permanent(format!("invalid input: {e}"));
        let input = parse(input).map_err(invalid)?;
        let (max_width, max_height) = (input.max_width as u32, input.max_height as u32);
        let bytes = decode(&input.image).map_err(invalid)?;
        drop(input);
        // Checked again here: the job may predate the check, or the limit.
        let plan = plan(&bytes, max_width, max_height).map_err(invalid)?;
        let mut reader = reader(&bytes).map_err(|e| JobError::Permanent(e.to_string()))?;
        let mut limits = Limits::default();
        limits.max_image_width = Some(plan.width);
        limits.max_image_height = Some(plan.height);
        limits.max_alloc = Some(MAX_WORKING_SET);
        reader.limits(limits);
        let image = reader
            .decode()
            .map_err(|e| JobError::Permanent(format!("the image cannot be decoded: {e}")))?;
        drop(bytes);

        let thumbnail = if (plan.new_width, plan.new_height) == (image.width(), image.height()) {
            image
        } else {
            let thumbnail =
                image.resize_exact(plan.new_width, plan.new_height, FilterType::Triangle);
            drop(image);
            thumbnail
        };

        let mut bytes = Vec::new();
        thumbnail
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .map_err(|e| {
                JobError::Permanent(format!("the thumbnail cannot be encoded as PNG: {e}"))
            })?;
        Ok(JobOutput {
            bytes,
            content_type: "image/png",
            extension: "png",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb, RgbImage};
    use serde_json::json;

    fn gradient(width: u32, height: u32) -> RgbImage {
        ImageBuffer::from_fn(width, height, |x, y| {
            Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
        })
    }

    fn encode(image: &RgbImage, format: ImageFormat) -> String {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn decode_png(bytes: &[u8]) -> image::DynamicImage {
        assert_eq!(image::guess_format(bytes).unwrap(), ImageFormat::Png);
        image::load_from_memory_with_format(bytes, ImageFormat::Png).unwrap()
    }

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(fit(400, 200, 100, 100), (100, 50));
        assert_eq!(fit(200, 400, 100, 100), (50, 100));
        assert_eq!(fit(50, 20, 100, 100), (50, 20));
        assert_eq!(fit(1000, 1, 10, 10), (10, 1));
        assert_eq!(fit(333, 100, 100, 1000), (100, 30));
    }

    #[test]
    fn png_is_scaled_to_fit() {
        let input = json!({"image": encode(&gradient(64, 32), ImageFormat::Png), "max_width": 16, "max_height": 16});
        let input = input.to_string();
        Thumbnail.validate(&input).unwrap();
        let out = Thumbnail.run(&input).unwrap();
        assert_eq!((out.content_type, out.extension), ("image/png", "png"));
        let thumb = decode_png(&out.bytes);
        assert_eq!((thumb.width(), thumb.height()), (16, 8));
        // Deterministic: the same input gives the same bytes.
        assert_eq!(Thumbnail.run(&input).unwrap().bytes, out.bytes);
    }

    #[test]
    fn jpeg_is_converted_and_small_images_kept() {
        let input = json!({"image": encode(&gradient(30, 40), ImageFormat::Jpeg), "max_width": 100, "max_height": 100}).to_string();
        Thumbnail.validate(&input).unwrap();
        let thumb = decode_png(&Thumbnail.run(&input).unwrap().bytes);
        assert_eq!((thumb.width(), thumb.height()), (30, 40));
    }

    #[test]
    fn a_uniform_image_stays_uniform() {
        let image: RgbImage = ImageBuffer::from_pixel(20, 10, Rgb([10, 200, 30]));
        let input =
            json!({"image": encode(&image, ImageFormat::Png), "max_width": 5, "max_height": 5})
                .to_string();
        let thumb = decode_png(&Thumbnail.run(&input).unwrap().bytes).to_rgb8();
        assert_eq!(thumb.dimensions(), (5, 3));
        assert!(thumb.pixels().all(|p| *p == Rgb([10, 200, 30])));
    }

    #[test]
    fn validation_rejects_bad_inputs() {
        let png = encode(&gradient(4, 4), ImageFormat::Png);
        let gif_header =
            base64::engine::general_purpose::STANDARD.encode(b"GIF89a\x01\x00\x01\x00");
        let cases = [
            (json!({"max_width": 1, "max_height": 1}), "/image"),
            (
                json!({"image": "%%%", "max_width": 1, "max_height": 1}),
                "/image",
            ),
            (
                json!({"image": gif_header, "max_width": 1, "max_height": 1}),
                "/image",
            ),
            (
                json!({"image": png, "max_width": 0, "max_height": 1}),
                "/max_width",
            ),
            (
                json!({"image": png, "max_width": 1, "max_height": 4097}),
                "/max_height",
            ),
            (json!({"image": png, "max_width": 1}), "/max_height"),
            (
                json!({"image": png, "max_width": 1, "max_height": 1, "x": 1}),
                "/x",
            ),
        ];
        for (input, pointer) in cases {
            assert_eq!(
                Thumbnail.validate(&input.to_string()).unwrap_err().pointer,
                pointer,
                "{input}"
            );
        }
    }

    /// A PNG header (no image data) of the given size, bit depth and colour type.
    fn png_header(width: u32, height: u32, depth: u8, color: u8) -> Vec<u8> {
        let mut png = Vec::new();
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(b"IHDR");
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        if color == 3 {
            let mut plte = b"PLTE".to_vec();
            plte.extend_from_slice(&[0; 3]);
            png.extend_from_slice(&3u32.to_be_bytes());
            png.extend_from_slice(&plte);
            png.extend_from_slice(&crc32(&plte).to_be_bytes());
        }
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IDAT");
        png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
        png
    }

    #[test]
    fn the_working_set_is_bounded_from_the_header_at_the_real_depth() {
        // 6324x6324 8-bit RGB: 120 MB decoded; 16-bit RGBA at 4000x4000: 128 MB;
        // 16-bit RGB at 3200x3200: 61 MB, plus the filter's 13 MB.
        for (width, depth, color) in [(6324, 8, 2), (4000, 16, 6), (3200, 16, 2)] {
            let err = plan(&png_header(width, width, depth, color), 256, 256).unwrap_err();
            assert_eq!(err.pointer, "/image");
            assert!(err.message.contains("MiB"), "{err}");
        }
        // 2000x2000 8-bit RGB to 256x256: fits.
        let p = plan(&png_header(2000, 2000, 8, 2), 256, 256).unwrap();
        assert_eq!(
            (p.new_width, p.new_height, p.bytes_per_pixel),
            (256, 256, 3)
        );
        // Decoded 12 MB, intermediate 2000*256*16 = 8.2 MB, thumbnail 0.2 MB.
        assert_eq!(p.working_set, 12_000_000 + 8_192_000 + 196_608);
        // 16-bit and palette images count at the depth the decoder produces.
        assert_eq!(
            plan(&png_header(100, 100, 16, 6), 10, 10)
                .unwrap()
                .bytes_per_pixel,
            8
        );
        assert_eq!(
            plan(&png_header(100, 100, 4, 3), 10, 10)
                .unwrap()
                .bytes_per_pixel,
            3
        );
        assert_eq!(
            plan(&png_header(100, 100, 1, 0), 10, 10)
                .unwrap()
                .bytes_per_pixel,
            1
        );
        // The thumbnail itself counts: 4096x4096 kept at its size is too much
        // at 8 bytes per pixel, fine when scaled down.
        assert!(plan(&png_header(2048, 2048, 16, 6), 4096, 4096).is_err());
        assert!(plan(&png_header(2048, 2048, 16, 6), 64, 64).is_ok());
    }

    /// A JPEG header: SOFn with three components at the given sampling
    /// factors, then an SOS over `scan_components` of them (no data).
    fn jpeg_header(
        sof: u8,
        width: u16,
        height: u16,
        sampling: [u8; 3],
        scan_components: u8,
    ) -> Vec<u8> {
        let mut jpeg = vec![0xff, 0xd8];
        let mut frame = vec![8];
        frame.extend_from_slice(&height.to_be_bytes());
        frame.extend_from_slice(&width.to_be_bytes());
        frame.push(3);
        for (id, s) in sampling.iter().enumerate() {
            frame.extend_from_slice(&[id as u8 + 1, *s, 0]);
        }
        jpeg.extend_from_slice(&[0xff, sof]);
        jpeg.extend_from_slice(&(frame.len() as u16 + 2).to_be_bytes());
        jpeg.extend_from_slice(&frame);
        let mut scan = vec![scan_components];
        for id in 0..scan_components {
            scan.extend_from_slice(&[id + 1, 0]);
        }
        scan.extend_from_slice(&[0, 63, 0]);
        jpeg.extend_from_slice(&[0xff, 0xda]);
        jpeg.extend_from_slice(&(scan.len() as u16 + 2).to_be_bytes());
        jpeg.extend_from_slice(&scan);
        jpeg
    }

    #[test]
    fn jpeg_coefficients_count_when_the_decoder_keeps_them() {
        // 4:2:0, 1600x1200: MCUs of 16x16, 100x75 of them.
        let whole = (100 * 16 * 75 * 16 + 2 * (100 * 8 * 75 * 8)) * 2;
        let progressive = jpeg_header(0xc2, 1600, 1200, [0x22, 0x11, 0x11], 1);
        assert_eq!(jpeg_coefficient_bytes(&progressive), whole);
        let separate_scans = jpeg_header(0xc0, 1600, 1200, [0x22, 0x11, 0x11], 1);
        assert_eq!(jpeg_coefficient_bytes(&separate_scans), whole);
        let baseline = jpeg_header(0xc0, 1600, 1200, [0x22, 0x11, 0x11], 3);
        assert_eq!(jpeg_coefficient_bytes(&baseline), whole / 75);
        // Unparseable: the worst case for what the image decoder reports.
        assert!(jpeg_coefficient_bytes(b"\xff\xd8\xff") > 0);
    }

    #[test]
    fn decompression_bomb_is_rejected_from_the_header() {
        // A PNG header claiming 10000x10000 pixels, with no image data.
        let mut png = Vec::new();
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(b"IHDR");
        ihdr.extend_from_slice(&10_000u32.to_be_bytes());
        ihdr.extend_from_slice(&10_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        // An empty IDAT chunk: decoders read the header up to the first IDAT.
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IDAT");
        png.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
        let input = json!({
            "image": base64::engine::general_purpose::STANDARD.encode(&png),
            "max_width": 10, "max_height": 10
        });
        let err = Thumbnail.validate(&input.to_string()).unwrap_err();
        assert_eq!(err.pointer, "/image");
        assert!(err.message.contains("limit"), "{err}");
    }

    #[test]
    fn corrupt_body_is_a_permanent_failure() {
        let mut bytes = Vec::new();
        gradient(32, 32)
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes.truncate(60); // header intact, image data cut off
        let input = json!({
            "image": base64::engine::general_purpose::STANDARD.encode(&bytes),
            "max_width": 8, "max_height": 8
        });
        let input = input.to_string();
        Thumbnail.validate(&input).unwrap();
        assert!(matches!(Thumbnail.run(&input), Err(JobError::Permanent(_))));
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
}
