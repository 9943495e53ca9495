//! A JSON text walked as it arrives, in slices cut anywhere, reporting the values found at
//! chosen paths.
//!
//! The walker never builds the document. It keeps the path of the open containers down to
//! [`TRACKED_DEPTH`] (deeper ones are only counted) and copies out only the values at its
//! targets' paths, each up to its length bound: its memory is fixed whatever the size of the
//! document. A key matches only at its place in a path, so what a value elsewhere holds (a
//! client's JSON schema echoed back with a property named `usage`, a quoted `"usage": {…}` in
//! some text) is never taken for a target.
//!
//! It is not a validator: it follows strings, escapes and brackets, enough to know where each
//! value of a well-formed text begins and ends, and whether one whole value was read
//! ([`Walker::is_complete`]). What it reports of a malformed text is unspecified, but it never
//! panics and stays within its bounds.

/// How many levels of containers the path is known for; values deeper cannot be targets.
pub(super) const TRACKED_DEPTH: usize = 3;

/// The longest key compared with a target's; longer keys match none.
const MAX_KEY: usize = 24;

/// One step of a path from the document's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// The member of an object with this key (as written, escapes not decoded).
    Key(&'static [u8]),
    /// Any element of an array.
    Element,
}

/// A value to report: the one at `path` (at most [`TRACKED_DEPTH`] steps), copied up to
/// `max_len` bytes, reported with `field`. No target's path may lead into another's value:
/// one value is copied at a time.
#[derive(Debug)]
pub(super) struct Target<F: 'static> {
    pub(super) path: &'static [Step],
    pub(super) max_len: usize,
    pub(super) field: F,
}

/// A target's value, as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found<'a> {
    /// Its JSON text, whitespace inside it included.
    Value(&'a [u8]),
    /// Longer than the target's `max_len`.
    TooLong,
}

pub(super) struct Walker<F: 'static> {
    targets: &'static [Target<F>],
    /// The open containers, outermost first; only the first `depth.min(TRACKED_DEPTH)` are kept.
    frames: [Frame; TRACKED_DEPTH],
    depth: usize,
    lex: Lex,
    root: Root,
    /// Where the key being read starts in the current slice.
    key_from: usize,
    copying: Option<Copying>,
    /// The value being copied; its allocation is kept from one value to the next.
    copied: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Frame {
    object: bool,
    /// In an object: the next string is a key (after `{` or `,`).
    expect_key: bool,
    /// In an object: the key of the current member.
    key: Key,
}

#[derive(Debug, Clone, Copy, Default)]
struct Key {
    bytes: [u8; MAX_KEY],
    /// `None` once longer than [`MAX_KEY`].
    len: Option<usize>,
}

impl Key {
    fn push(&mut self, bytes: &[u8]) {
        self.len = self.len.and_then(|len| {
            let end = len.checked_add(bytes.len()).filter(|&end| end <= MAX_KEY)?;
            self.bytes[len..end].copy_from_slice(bytes);
            Some(end)
        });
    }

    fn is(&self, key: &[u8]) -> bool {
        self.len.is_some_and(|len| &self.bytes[..len] == key)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Between tokens.
    Between,
    /// Inside a string; `key`: it is a tracked object's key; `escaped`: after a backslash.
    Str { key: bool, escaped: bool },
    /// Inside a number, `true`, `false` or `null`.
    Scalar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Before,
    Inside,
    Done,
    Malformed,
}

#[derive(Debug, Clone, Copy)]
struct Copying {
    target: usize,
    /// The depth the value starts at (and ends at).
    depth: usize,
    /// Where its bytes not copied yet start in the current slice.
    from: usize,
    too_long: bool,
}

impl<F: Copy> Walker<F> {
    pub(super) fn new(targets: &'static [Target<F>]) -> Self {
        Walker {
            targets,
            frames: [Frame::default(); TRACKED_DEPTH],
            depth: 0,
            lex: Lex::Between,
            root: Root::Before,
            key_from: 0,
            copying: None,
            copied: Vec::new(),
        }
    }

    /// Starts a new document (keeping the copy buffer's allocation).
    pub(super) fn reset(&mut self) {
        *self = Walker { copied: std::mem::take(&mut self.copied), ..Walker::new(self.targets) };
    }

    /// Whether exactly one whole value was read, with only whitespace after it.
    pub(super) fn is_complete(&self) -> bool {
        self.root == Root::Done && self.lex == Lex::Between
    }

    /// Reads the next slice of the document, calling `found` with each target value it ends.
    pub(super) fn feed(&mut self, bytes: &[u8], found: &mut impl FnMut(F, Found<'_>)) {
        self.key_from = 0;
        if let Some(copying) = &mut self.copying {
            copying.from = 0;
        }
        let mut at = 0;
        while at < bytes.len() {
            match self.lex {
                Lex::Str { key, escaped: true } => {
                    self.lex = Lex::Str { key, escaped: false };
                    at += 1;
                }
                Lex::Str { key, escaped: false } => {
                    let Some(len) = bytes[at..].iter().position(|&b| b == b'"' || b == b'\\') else { break };
                    at += len;
                    if bytes[at] == b'\\' {
                        self.lex = Lex::Str { key, escaped: true };
                        at += 1;
                        continue;
                    }
                    self.lex = Lex::Between;
                    if key {
                        self.key_bytes(&bytes[self.key_from..at]);
                        at += 1;
                    } else {
                        at += 1;
                        self.value_ends(bytes, at, found);
                    }
                }
                Lex::Scalar => {
                    let Some(len) = bytes[at..].iter().position(|&b| is_delimiter(b)) else { break };
                    at += len;
                    self.lex = Lex::Between;
                    self.value_ends(bytes, at, found);
                }
                Lex::Between => {
                    self.between(bytes, at, found);
                    at += 1;
                }
            }
        }
        if let Lex::Str { key: true, .. } = self.lex {
            self.key_bytes(&bytes[self.key_from..]);
        }
        if let Some(copying) = self.copying {
            self.copy(&bytes[copying.from..]);
        }
    }

    /// Reads `bytes[at]`, outside any token.
    fn between(&mut self, bytes: &[u8], at: usize, found: &mut impl FnMut(F, Found<'_>)) {
        match bytes[at] {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            open @ (b'{' | b'[') => {
                self.value_starts(at);
                if let Some(frame) = self.frames.get_mut(self.depth) {
                    let object = open == b'{';
                    *frame = Frame { object, expect_key: object, key: Key::default() };
                }
                self.depth += 1;
            }
            b'}' | b']' => match self.depth.checked_sub(1) {
                Some(depth) => {
                    self.depth = depth;
                    self.value_ends(bytes, at + 1, found);
                }
                None => self.root = Root::Malformed,
            },
            b':' => {
                if let Some(frame) = self.tracked_frame() {
                    frame.expect_key = false;
                }
            }
            b',' => {
                if let Some(frame) = self.tracked_frame() {
                    frame.expect_key = frame.object;
                }
            }
            b'"' => {
                let key = self.tracked_frame().is_some_and(|frame| frame.object && frame.expect_key);
                if key {
                    self.key_from = at + 1;
                    let frame = &mut self.frames[self.depth - 1];
                    frame.key = Key { len: Some(0), ..Key::default() };
                    frame.expect_key = false;
                } else {
                    self.value_starts(at);
                }
                self.lex = Lex::Str { key, escaped: false };
            }
            _ => {
                self.value_starts(at);
                self.lex = Lex::Scalar;
            }
        }
    }

    /// The innermost open container, if its path is tracked.
    fn tracked_frame(&mut self) -> Option<&mut Frame> {
        let depth = self.depth.checked_sub(1)?;
        self.frames.get_mut(depth)
    }

    fn key_bytes(&mut self, bytes: &[u8]) {
        self.frames[self.depth - 1].key.push(bytes);
    }

    /// A value starts at `bytes[at]`, at the current depth.
    fn value_starts(&mut self, at: usize) {
        if self.depth == 0 {
            self.root = if self.root == Root::Before { Root::Inside } else { Root::Malformed };
        }
        if self.copying.is_some() || self.depth > TRACKED_DEPTH {
            return;
        }
        if let Some(target) = self.targets.iter().position(|target| self.is_at(target.path)) {
            self.copied.clear();
            self.copying = Some(Copying { target, depth: self.depth, from: at, too_long: false });
        }
    }

    fn is_at(&self, path: &[Step]) -> bool {
        path.len() == self.depth
            && path.iter().zip(&self.frames).all(|(step, frame)| match step {
                Step::Key(key) => frame.object && frame.key.is(key),
                Step::Element => !frame.object,
            })
    }

    /// A value at the current depth ends just before `bytes[end]`.
    fn value_ends(&mut self, bytes: &[u8], end: usize, found: &mut impl FnMut(F, Found<'_>)) {
        if self.depth == 0 && self.root == Root::Inside {
            self.root = Root::Done;
        }
        let Some(copying) = self.copying.filter(|copying| copying.depth == self.depth) else { return };
        self.copy(&bytes[copying.from..end]);
        let copying = self.copying.take().expect("copying");
        let value = if copying.too_long { Found::TooLong } else { Found::Value(&self.copied) };
        found(self.targets[copying.target].field, value);
    }

    fn copy(&mut self, bytes: &[u8]) {
        let Some(copying) = &mut self.copying else { return };
        if copying.too_long {
            return;
        }
        if self.copied.len() + bytes.len() > self.targets[copying.target].max_len {
            copying.too_long = true;
            self.copied.clear();
        } else {
            self.copied.extend_from_slice(bytes);
        }
    }
}

/// A byte that ends a number or literal.
fn is_delimiter(byte: u8) -> bool {
    matches!(byte, b',' | b'}' | b']' | b':' | b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'{' | b'[')
}

#[cfg(test)]
mod tests {
    use super::*;

    static TARGETS: [Target<&str>; 4] = [
        Target { path: &[Step::Key(b"usage")], max_len: 64, field: "usage" },
        Target { path: &[Step::Key(b"response"), Step::Key(b"usage")], max_len: 64, field: "response.usage" },
        Target { path: &[Step::Key(b"c"), Step::Element, Step::Key(b"r")], max_len: 8, field: "c.*.r" },
        Target { path: &[Step::Element], max_len: 8, field: "*" },
    ];

    /// The values found in `text` fed in `pieces`, and whether it was complete.
    fn walk(pieces: &[&[u8]]) -> (Vec<(&'static str, String)>, bool) {
        let mut walker = Walker::new(&TARGETS);
        let mut seen = Vec::new();
        for piece in pieces {
            walker.feed(piece, &mut |field, found| {
                let shown = match found {
                    Found::Value(value) => String::from_utf8_lossy(value).into_owned(),
                    Found::TooLong => "…".to_string(),
                };
                seen.push((field, shown));
            });
        }
        (seen, walker.is_complete())
    }

    /// Asserts that `text`, whole and split in two and three anywhere, reads as `expected`.
    fn assert_walks(text: &str, expected: &[(&str, &str)], complete: bool) {
        let text = text.as_bytes();
        let expected: Vec<(&str, String)> = expected.iter().map(|&(f, v)| (f, v.to_string())).collect();
        assert_eq!(walk(&[text]), (expected.clone(), complete), "whole");
        for a in 0..=text.len() {
            assert_eq!(walk(&[&text[..a], &text[a..]]), (expected.clone(), complete), "split at {a}");
            for b in a..=text.len() {
                let pieces = [&text[..a], &text[a..b], &text[b..]];
                assert_eq!(walk(&pieces), (expected.clone(), complete), "split at {a}, {b}");
            }
        }
    }

    #[test]
    fn reads_targets_only_at_their_paths() {
        let text = r#"{"tools":[{"parameters":{"properties":{"usage":{"type":"object"}}}}],
            "text":{"format":{"schema":{"usage":{"x":1}}}},"note":"\"usage\":{\"a\":1}",
            "response":{"id":"r","usage" : {"input_tokens":5, "o":[1,{"usage":2}]}},
            "usage":null}"#;
        assert_walks(
            text,
            &[("response.usage", r#"{"input_tokens":5, "o":[1,{"usage":2}]}"#), ("usage", "null")],
            true,
        );
    }

    #[test]
    fn elements_of_arrays_and_scalars() {
        assert_walks(
            r#"{"c":[{"r":"STOP"},{"x":1,"r":null},{"r":12.5e3},{"r":[1]}],"d":{"r":1}}"#,
            &[("c.*.r", "\"STOP\""), ("c.*.r", "null"), ("c.*.r", "12.5e3"), ("c.*.r", "[1]")],
            true,
        );
        assert_walks("[DONE]", &[("*", "DONE")], true);
        assert_walks(r#"[{"usage":1}, "a\"b", 7]"#, &[("*", "…"), ("*", r#""a\"b""#), ("*", "7")], true);
    }

    #[test]
    fn long_values_and_keys() {
        assert_walks(r#"{"c":[{"r":"0123456789"}]}"#, &[("c.*.r", "…")], true);
        // A key longer than any target's never matches, even if it starts like one.
        assert_walks(r#"{"usageusageusageusageusage":{},"usage":1}"#, &[("usage", "1")], true);
        // An escaped key is compared as written.
        assert_walks(r#"{"usag\u0065":{},"us\"age":2}"#, &[], true);
    }

    #[test]
    fn deep_documents_are_only_counted() {
        let deep = format!(r#"{{"a":{}1{},"usage":3}}"#, "[{\"usage\":".repeat(50), "}]".repeat(50));
        assert_walks(&deep, &[("usage", "3")], true);
    }

    #[test]
    fn completeness() {
        for (text, complete) in [
            ("{}", true),
            ("  {\"a\":[1,2]} \r\n", true),
            ("", false),
            ("{\"a\":[1,2]", false),
            ("{\"a\":\"}", false),
            ("{}}", false),
            ("{} {}", false),
            ("{} x", false),
            ("]", false),
        ] {
            assert_eq!(walk(&[text.as_bytes()]).1, complete, "{text}");
        }
    }

    #[test]
    fn reset_starts_a_new_document() {
        let mut walker = Walker::new(&TARGETS);
        let mut count = 0;
        walker.feed(br#"{"usage":{"a":"#, &mut |_, _| count += 1);
        walker.reset();
        walker.feed(br#"{"usage":2}"#, &mut |_, found| {
            assert_eq!(found, Found::Value(b"2"));
            count += 1;
        });
        assert_eq!(count, 1);
        assert!(walker.is_complete());
    }
}
