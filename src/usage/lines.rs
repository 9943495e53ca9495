//! An event stream cut into lines, whatever the chunk boundaries.
//!
//! A line ends at `\n`; a `\r` before it is dropped, so `\r\n` streams read the same. Lines
//! that lie within one chunk are read in place; only a line split across chunks is copied, into
//! a [`Tail`]. Of a line too long for it, only its first bytes (its kind) and at least its last
//! [`TAIL_BYTES`](super::tail::TAIL_BYTES) are kept: enough to find a usage object, which sits
//! at the end of an event.

use super::tail::Tail;

const DATA: &[u8] = b"data:";

/// One line of an event stream, without its line ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line<'a> {
    /// An empty line: the end of an event.
    Blank,
    /// A `data:` line. `value` is what follows `data:`, or, when `whole` is false, only the
    /// last bytes of a line too long to hold (see [`Tail`]).
    Data { value: &'a [u8], whole: bool },
    /// Any other field, or a comment.
    Other,
}

impl<'a> Line<'a> {
    /// The line `text`, whole, possibly still ending in `\r`.
    fn whole(text: &'a [u8]) -> Self {
        let text = without_cr(text);
        if text.is_empty() {
            Line::Blank
        } else if let Some(value) = text.strip_prefix(DATA) {
            Line::Data { value, whole: true }
        } else {
            Line::Other
        }
    }
}

fn without_cr(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\r").unwrap_or(text)
}

#[derive(Debug, Default)]
pub(super) struct LineReader {
    /// The line begun in an earlier chunk and not ended yet; empty between lines.
    partial: Tail,
    /// Its first bytes (up to the length of `data:`), which tell its kind once `partial` has
    /// dropped them.
    head: [u8; DATA.len()],
    head_len: usize,
}

impl LineReader {
    /// Reads `chunk`, calling `on_line` with each line it completes and the offset in `chunk`
    /// just past that line. When `body_ends`, the end of `chunk` also ends the last line, if
    /// any bytes of it were read.
    pub(super) fn feed(&mut self, chunk: &[u8], body_ends: bool, mut on_line: impl FnMut(Line<'_>, usize)) {
        let mut start = 0;
        while let Some(len) = chunk[start..].iter().position(|&b| b == b'\n') {
            let text = &chunk[start..start + len];
            start += len + 1;
            self.end_line(text, start, &mut on_line);
        }
        let rest = &chunk[start..];
        if body_ends && !(rest.is_empty() && self.partial.is_empty()) {
            self.end_line(rest, chunk.len(), &mut on_line);
        } else {
            self.append(rest);
        }
    }

    /// Ends the current line with `text`, its last bytes, at offset `end` of the chunk.
    fn end_line(&mut self, text: &[u8], end: usize, on_line: &mut impl FnMut(Line<'_>, usize)) {
        if self.partial.is_empty() {
            return on_line(Line::whole(text), end);
        }
        self.append(text);
        let line = if !self.partial.truncated() {
            Line::whole(self.partial.bytes())
        } else if self.head[..self.head_len] == *DATA {
            Line::Data { value: without_cr(self.partial.bytes()), whole: false }
        } else {
            Line::Other
        };
        on_line(line, end);
        self.partial.clear();
        self.head_len = 0;
    }

    fn append(&mut self, bytes: &[u8]) {
        let taken = (DATA.len() - self.head_len).min(bytes.len());
        self.head[self.head_len..self.head_len + taken].copy_from_slice(&bytes[..taken]);
        self.head_len += taken;
        self.partial.push(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::tail::TAIL_BYTES;

    /// The lines of `chunks`, shown with their end offsets in their chunk.
    fn read(chunks: &[&[u8]], body_ends: bool) -> Vec<(String, usize)> {
        let mut reader = LineReader::default();
        let mut lines = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let ends = body_ends && i == chunks.len() - 1;
            reader.feed(chunk, ends, |line, end| {
                let shown = match line {
                    Line::Blank => "blank".to_string(),
                    Line::Data { value, whole } => {
                        format!("data[{}]{}", String::from_utf8_lossy(value), if whole { "" } else { "…" })
                    }
                    Line::Other => "other".to_string(),
                };
                lines.push((shown, end));
            });
        }
        lines
    }

    fn shown(lines: &[(String, usize)]) -> Vec<&str> {
        lines.iter().map(|(s, _)| s.as_str()).collect()
    }

    #[test]
    fn kinds_and_offsets_within_a_chunk() {
        let lines = read(&[b"event: x\ndata: {}\n\n: ping\r\ndata:[DONE]\r\n\r\n"], false);
        assert_eq!(
            lines,
            vec![
                ("other".into(), 9),
                ("data[ {}]".into(), 18),
                ("blank".into(), 19),
                ("other".into(), 27),
                ("data[[DONE]]".into(), 40),
                ("blank".into(), 42),
            ]
        );
    }

    #[test]
    fn lines_split_anywhere_read_the_same() {
        let stream: &[u8] = b"data: one\r\n\r\nevent: e\ndata: two\n\n";
        let whole = shown(&read(&[stream], false)).into_iter().map(String::from).collect::<Vec<_>>();
        for at in 0..=stream.len() {
            let lines = read(&[&stream[..at], &stream[at..]], false);
            assert_eq!(shown(&lines), whole, "split at {at}");
        }
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(shown(&read(&bytewise, false)), whole);
    }

    #[test]
    fn unterminated_last_line_ends_only_with_the_body() {
        assert_eq!(shown(&read(&[b"data: a\ndata: b"], false)), ["data[ a]"]);
        assert_eq!(shown(&read(&[b"data: a\ndata: b"], true)), ["data[ a]", "data[ b]"]);
        assert_eq!(shown(&read(&[b"data: a\nda", b"ta: b\r", b""], true)), ["data[ a]", "data[ b]"]);
        assert_eq!(shown(&read(&[b"data: a\n", b""], true)), ["data[ a]"]);
    }

    #[test]
    fn overlong_lines_keep_their_kind_and_tail() {
        let filler = vec![b'x'; 3 * TAIL_BYTES];
        let data = [b"da".as_slice(), b"ta: ", &filler, b"END\r\n"].concat();
        let other = [b"event: ".as_slice(), &filler, b"\n"].concat();
        let mut reader = LineReader::default();
        let mut seen = Vec::new();
        for stream in [&data, &other] {
            for piece in stream.chunks(1000) {
                reader.feed(piece, false, |line, _| {
                    seen.push(match line {
                        Line::Data { value, whole } => (value.len() >= TAIL_BYTES - 1, value.ends_with(b"xEND"), whole),
                        _ => (false, false, true),
                    })
                });
            }
        }
        assert_eq!(seen, [(true, true, false), (false, false, true)]);
    }
}
