//! A bounded buffer of the last bytes of a stream: where every family writes its usage, so
//! the bytes before it need not be kept.

/// How many of the last bytes pushed a [`Tail`] always holds.
pub(super) const TAIL_BYTES: usize = 64 * 1024;

/// The last bytes pushed: all of them while there are at most `2 × TAIL_BYTES`; after that
/// never fewer than the last [`TAIL_BYTES`] nor more than `2 × TAIL_BYTES`. Compacting only at
/// twice the bound keeps copying amortised O(1) per byte.
#[derive(Debug, Default)]
pub(super) struct Tail {
    bytes: Vec<u8>,
    /// Whether bytes were dropped from the front since the last [`Tail::clear`].
    truncated: bool,
}

impl Tail {
    pub(super) fn push(&mut self, chunk: &[u8]) {
        if self.bytes.len() + chunk.len() <= 2 * TAIL_BYTES {
            self.bytes.extend_from_slice(chunk);
            return;
        }
        // Keep exactly the last TAIL_BYTES of what is held followed by `chunk`.
        let from_chunk = chunk.len().min(TAIL_BYTES);
        let from_held = TAIL_BYTES - from_chunk;
        self.bytes.drain(..self.bytes.len() - from_held);
        self.bytes.extend_from_slice(&chunk[chunk.len() - from_chunk..]);
        self.truncated = true;
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(super) fn truncated(&self) -> bool {
        self.truncated
    }

    /// Empties the buffer for a new stream, keeping its allocation.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.truncated = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` bytes counting up from `from`, so any window of them is recognisable.
    fn bytes(from: usize, len: usize) -> Vec<u8> {
        (from..from + len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn holds_everything_up_to_twice_the_bound() {
        let mut tail = Tail::default();
        tail.push(&bytes(0, TAIL_BYTES));
        tail.push(&bytes(TAIL_BYTES, TAIL_BYTES));
        assert_eq!(tail.bytes(), bytes(0, 2 * TAIL_BYTES));
        assert!(!tail.truncated());
    }

    #[test]
    fn keeps_the_last_bytes_of_many_small_pushes() {
        let mut tail = Tail::default();
        let all = bytes(0, 5 * TAIL_BYTES + 123);
        let mut pushed = 0;
        for piece in all.chunks(1000) {
            tail.push(piece);
            pushed += piece.len();
            assert!(tail.bytes().len() <= 2 * TAIL_BYTES);
            assert!(tail.bytes().len() >= TAIL_BYTES.min(pushed));
            assert!(all[..pushed].ends_with(tail.bytes()));
        }
        assert!(tail.truncated());
    }

    #[test]
    fn one_huge_push_keeps_only_its_end() {
        let mut tail = Tail::default();
        tail.push(b"head");
        let huge = bytes(7, 3 * TAIL_BYTES);
        tail.push(&huge);
        assert_eq!(tail.bytes(), &huge[huge.len() - TAIL_BYTES..]);
        assert!(tail.truncated());
        tail.clear();
        assert!(tail.is_empty() && !tail.truncated());
    }
}
