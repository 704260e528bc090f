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

/// Read the header only and check the pixel count.
fn check_header(bytes: &[u8]) -> Result<(u32, u32), InputError> {
    let (width, height) = reader(bytes)?
        .into_dimensions()
        .map_err(|_| InputError::new("/image", "has an unreadable PNG/JPEG header"))?;
    if width == 0 || height == 0 {
        return Err(InputError::new("/image", "has no pixels"));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(InputError::new(
            "/image",
            format!("is {width}x{height} pixels; the limit is {MAX_PIXELS} pixels"),
        ));
    }
    Ok((width, height))
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

    fn validate(&self, input: &str) -> Result<String, InputError> {
        let parsed = parse(input)?;
        check_header(&decode(&parsed.image)?)?;
        canonical(&parsed, input.len())
    }

    fn run(&self, input: &str) -> Result<JobOutput, JobError> {
        let invalid = |e: InputError| JobError::Permanent(format!("invalid input: {e}"));
        let input = parse(input).map_err(invalid)?;
        let (max_width, max_height) = (input.max_width as u32, input.max_height as u32);
        let bytes = decode(&input.image).map_err(invalid)?;
        drop(input);
        let (width, height) = check_header(&bytes).map_err(invalid)?;
        let mut reader = reader(&bytes).map_err(|e| JobError::Permanent(e.to_string()))?;
        let mut limits = Limits::default();
        limits.max_image_width = Some(width);
        limits.max_image_height = Some(height);
        reader.limits(limits);
        let image = reader
            .decode()
            .map_err(|e| JobError::Permanent(format!("the image cannot be decoded: {e}")))?;

        let (new_width, new_height) = fit(image.width(), image.height(), max_width, max_height);
        let thumbnail = if (new_width, new_height) == (image.width(), image.height()) {
            image
        } else {
            image.resize_exact(new_width, new_height, FilterType::Triangle)
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
