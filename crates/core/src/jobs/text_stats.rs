//! `text-stats`: counts and a digest of a text.
//!
//! Input: `{"text": string, "top_n": integer 1..=100 (default 10)}`.
//!
//! Output (`application/json`), one object:
//! - `characters`: Unicode scalar values (`str::chars().count()`);
//! - `bytes`: UTF-8 bytes;
//! - `words`: words, where a word is a maximal run of alphanumeric characters
//!   (Unicode `Alphabetic` or `Numeric`), also holding an apostrophe (`'` or
//!   `’`, normalised to `'`) that has an alphanumeric character on both sides
//!   (`don't`, `l'eau`); words are compared lower-cased;
//! - `lines`: `str::lines().count()`: `""` has 0 lines, `"a\n"` 1, `"a\nb"` 2;
//! - `unique_words`: distinct lower-cased words;
//! - `top_words`: up to `top_n` `{word, count}`, by count descending, then word
//!   ascending (byte order);
//! - `sha256`: lower-case hex SHA-256 of the text's UTF-8 bytes.

use std::collections::HashMap;

use std::borrow::Cow;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    canonical, input_members, integer_member, string_member, InputError, JobError, JobOutput,
    JobType,
};

/// The `text-stats` job type.
pub struct TextStats;

const DEFAULT_TOP_N: u64 = 10;

/// The result document.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// Unicode scalar values.
    pub characters: u64,
    /// UTF-8 bytes.
    pub bytes: u64,
    /// Words.
    pub words: u64,
    /// Lines.
    pub lines: u64,
    /// Distinct words.
    pub unique_words: u64,
    /// The most frequent words.
    pub top_words: Vec<WordCount>,
    /// Hex SHA-256 of the text.
    pub sha256: String,
}

/// One entry of `top_words`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct WordCount {
    /// The lower-cased word.
    pub word: String,
    /// How often it occurs.
    pub count: u64,
}

/// The input, typed; its fields in name order, so that it serializes canonically.
#[derive(Serialize)]
struct Input<'a> {
    text: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_n: Option<u64>,
}

fn parse(input: &str) -> Result<Input<'_>, InputError> {
    let [text, top_n] = input_members(input, ["text", "top_n"])?;
    Ok(Input {
        text: string_member(text, "text", "a string")?,
        top_n: integer_member(top_n, "top_n", 1, 100)?,
    })
}

/// Split `text` into lower-cased words (see the module documentation).
pub fn words(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if (c == '\'' || c == '\u{2019}')
            && !current.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())
        {
            current.push('\'');
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Compute the statistics of `text`.
pub fn stats(text: &str, top_n: usize) -> Stats {
    let words = words(text);
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for word in &words {
        *counts.entry(word.as_str()).or_default() += 1;
    }
    let mut top: Vec<(&str, u64)> = counts.iter().map(|(w, c)| (*w, *c)).collect();
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    top.truncate(top_n);
    Stats {
        characters: text.chars().count() as u64,
        bytes: text.len() as u64,
        words: words.len() as u64,
        lines: text.lines().count() as u64,
        unique_words: counts.len() as u64,
        top_words: top
            .into_iter()
            .map(|(word, count)| WordCount {
                word: word.to_string(),
                count,
            })
            .collect(),
        sha256: hex(&Sha256::digest(text.as_bytes())),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl JobType for TextStats {
    fn name(&self) -> &'static str {
        "text-stats"
    }

    fn validate(&self, input: &str) -> Result<String, InputError> {
        let parsed = parse(input)?;
        canonical(&parsed, input.len())
    }

    fn run(&self, input: &str) -> Result<JobOutput, JobError> {
        let input = parse(input).map_err(|e| JobError::Permanent(format!("invalid input: {e}")))?;
        let top_n = input.top_n.unwrap_or(DEFAULT_TOP_N) as usize;
        let bytes = serde_json::to_vec(&stats(&input.text, top_n))
            .map_err(|e| JobError::Permanent(format!("cannot serialize the result: {e}")))?;
        Ok(JobOutput {
            bytes,
            content_type: "application/json",
            extension: "json",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hello_world() {
        let s = stats("hello world", 10);
        assert_eq!(s.characters, 11);
        assert_eq!(s.bytes, 11);
        assert_eq!(s.words, 2);
        assert_eq!(s.lines, 1);
        assert_eq!(s.unique_words, 2);
        assert_eq!(
            s.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(
            s.top_words,
            vec![
                WordCount {
                    word: "hello".into(),
                    count: 1
                },
                WordCount {
                    word: "world".into(),
                    count: 1
                }
            ]
        );
    }

    #[test]
    fn empty_text() {
        let s = stats("", 10);
        assert_eq!(
            (s.characters, s.bytes, s.words, s.lines, s.unique_words),
            (0, 0, 0, 0, 0)
        );
        // SHA-256 of the empty string.
        assert_eq!(
            s.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn words_lines_and_ranking() {
        let text = "The cat's hat; the CAT.\nDon't 'quote' me, l’eau\n\nthe end\n";
        assert_eq!(
            words(text),
            ["the", "cat's", "hat", "the", "cat", "don't", "quote", "me", "l'eau", "the", "end"]
        );
        let s = stats(text, 2);
        assert_eq!(s.lines, 4);
        assert_eq!(s.words, 11);
        assert_eq!(s.unique_words, 9);
        assert_eq!(
            s.top_words,
            vec![
                WordCount {
                    word: "the".into(),
                    count: 3
                },
                WordCount {
                    word: "cat".into(),
                    count: 1
                }
            ]
        );
    }

    #[test]
    fn unicode_counts() {
        // "Grüße 日本" : 8 scalar values, 14 UTF-8 bytes, 2 words.
        let s = stats("Grüße 日本", 10);
        assert_eq!((s.characters, s.bytes, s.words), (8, 14, 2));
        assert_eq!(s.top_words[0].word, "grüße");
    }

    #[test]
    fn output_document_is_exact() {
        let out = TextStats
            .run(&json!({"text": "b a b", "top_n": 1}).to_string())
            .unwrap();
        assert_eq!(out.content_type, "application/json");
        assert_eq!(out.extension, "json");
        let sha = hex(&Sha256::digest(b"b a b"));
        let expected = format!(
            r#"{{"characters":5,"bytes":5,"words":3,"lines":1,"unique_words":2,"top_words":[{{"word":"b","count":2}}],"sha256":"{sha}"}}"#
        );
        assert_eq!(String::from_utf8(out.bytes).unwrap(), expected);
    }

    #[test]
    fn validation() {
        assert_eq!(
            TextStats.validate(r#"{"text": ""}"#).unwrap(),
            r#"{"text":""}"#
        );
        // Canonical: members sorted, compact, strings as serde_json writes them.
        assert_eq!(
            TextStats
                .validate(r#"{ "top_n": 100, "text": "\u0078\n" }"#)
                .unwrap(),
            r#"{"text":"x\n","top_n":100}"#
        );
        let cases = [
            (json!({}), "/text"),
            (json!({"text": 3}), "/text"),
            (json!({"text": "x", "top_n": 0}), "/top_n"),
            (json!({"text": "x", "top_n": 101}), "/top_n"),
            (json!({"text": "x", "top_n": 2.5}), "/top_n"),
            (json!({"text": "x", "extra": true}), "/extra"),
            (json!("text"), ""),
        ];
        for (input, pointer) in cases {
            assert_eq!(
                TextStats.validate(&input.to_string()).unwrap_err().pointer,
                pointer,
                "{input}"
            );
        }
    }
}
