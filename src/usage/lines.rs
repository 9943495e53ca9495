//! An event stream cut into lines as it arrives, whatever the chunk boundaries.
//!
//! A line ends at `\n`. The value of a `data:` line (what follows `data:`) is passed on in
//! pieces as its bytes arrive, and nothing of any line is kept but its first bytes, until they
//! tell its kind: a line of any length costs a fixed amount of memory. A `\r` before the `\n`
//! stays in a data value (where JSON reads it as whitespace); a line of just `\r` is blank.

const DATA: &[u8] = b"data:";

/// What a line was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineKind {
    /// An empty line: the end of an event.
    Blank,
    /// A `data:` line.
    Data,
    /// Any other field, or a comment.
    Other,
}

/// What the reader found in a chunk, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Piece<'a> {
    /// Bytes of the current `data:` line's value.
    Data(&'a [u8]),
    /// The current line ended, just before offset `end` of the chunk.
    End { kind: LineKind, end: usize },
}

#[derive(Debug, Default)]
pub(super) struct LineReader {
    /// The current line's first bytes, up to the length of `data:`.
    head: [u8; DATA.len()],
    head_len: usize,
    /// The current line's kind, once its first bytes tell it.
    kind: Option<LineKind>,
    /// How many bytes of the current line were read (saturating).
    len: usize,
}

impl LineReader {
    /// Reads `chunk`, calling `on` with each piece of it. When `body_ends`, the end of `chunk`
    /// also ends the last line, if any byte of it was read.
    pub(super) fn feed(&mut self, chunk: &[u8], body_ends: bool, mut on: impl FnMut(Piece<'_>)) {
        let mut start = 0;
        while let Some(len) = chunk[start..].iter().position(|&b| b == b'\n') {
            self.read(&chunk[start..start + len], &mut on);
            start += len + 1;
            self.end_line(start, &mut on);
        }
        self.read(&chunk[start..], &mut on);
        if body_ends && self.len > 0 {
            self.end_line(chunk.len(), &mut on);
        }
    }

    /// Reads `text`, bytes of the current line.
    fn read(&mut self, mut text: &[u8], on: &mut impl FnMut(Piece<'_>)) {
        if text.is_empty() {
            return;
        }
        self.len = self.len.saturating_add(text.len());
        if self.kind.is_none() {
            let taken = (DATA.len() - self.head_len).min(text.len());
            self.head[self.head_len..self.head_len + taken].copy_from_slice(&text[..taken]);
            self.head_len += taken;
            text = &text[taken..];
            if !DATA.starts_with(&self.head[..self.head_len]) {
                self.kind = Some(LineKind::Other);
            } else if self.head_len == DATA.len() {
                self.kind = Some(LineKind::Data);
            }
        }
        if self.kind == Some(LineKind::Data) && !text.is_empty() {
            on(Piece::Data(text));
        }
    }

    fn end_line(&mut self, end: usize, on: &mut impl FnMut(Piece<'_>)) {
        let kind = match self.kind {
            _ if self.len == 0 || (self.len == 1 && self.head[0] == b'\r') => LineKind::Blank,
            Some(kind) => kind,
            None => LineKind::Other,
        };
        on(Piece::End { kind, end });
        *self = LineReader::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of `chunks`, each shown with its data value and its end offset in its chunk.
    fn read(chunks: &[&[u8]], body_ends: bool) -> Vec<(String, usize)> {
        let mut reader = LineReader::default();
        let mut lines = Vec::new();
        let mut value = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let ends = body_ends && i == chunks.len() - 1;
            reader.feed(chunk, ends, |piece| match piece {
                Piece::Data(bytes) => value.extend_from_slice(bytes),
                Piece::End { kind, end } => {
                    let shown = match kind {
                        LineKind::Blank => "blank".to_string(),
                        LineKind::Data => format!("data[{}]", String::from_utf8_lossy(&value)),
                        LineKind::Other => "other".to_string(),
                    };
                    assert!(kind == LineKind::Data || value.is_empty(), "data in a {kind:?} line");
                    value.clear();
                    lines.push((shown, end));
                }
            });
        }
        lines
    }

    fn shown(lines: &[(String, usize)]) -> Vec<&str> {
        lines.iter().map(|(s, _)| s.as_str()).collect()
    }

    #[test]
    fn kinds_and_offsets_within_a_chunk() {
        let lines = read(&[b"event: x\ndata: {}\n\n: ping\r\ndata:[DONE]\r\n\r\ndat\n"], false);
        assert_eq!(
            lines,
            vec![
                ("other".into(), 9),
                ("data[ {}]".into(), 18),
                ("blank".into(), 19),
                ("other".into(), 27),
                ("data[[DONE]\r]".into(), 40),
                ("blank".into(), 42),
                ("other".into(), 46),
            ]
        );
    }

    #[test]
    fn lines_split_anywhere_read_the_same() {
        let stream: &[u8] = b"data: one\r\n\r\nevent: e\ndata: two\n\ndata:\n\r\nda\n\rx\n";
        let whole = shown(&read(&[stream], false)).into_iter().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            whole,
            ["data[ one\r]", "blank", "other", "data[ two]", "blank", "data[]", "blank", "other", "other"]
        );
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
        assert_eq!(shown(&read(&[b"data: a\nda", b"ta: b\r", b""], true)), ["data[ a]", "data[ b\r]"]);
        assert_eq!(shown(&read(&[b"data: a\n", b""], true)), ["data[ a]"]);
    }

    #[test]
    fn long_lines_are_passed_on_not_kept() {
        let filler = vec![b'x'; 1 << 20];
        let stream = [b"data: ".as_slice(), &filler, b"END\r\n", b"event: ", &filler, b"\n"].concat();
        let mut reader = LineReader::default();
        let (mut data_len, mut kinds) = (0, Vec::new());
        for piece in stream.chunks(1000) {
            reader.feed(piece, false, |piece| match piece {
                Piece::Data(bytes) => data_len += bytes.len(),
                Piece::End { kind, .. } => kinds.push(kind),
            });
        }
        assert_eq!(data_len, 1 + filler.len() + 4);
        assert_eq!(kinds, [LineKind::Data, LineKind::Other]);
    }
}
