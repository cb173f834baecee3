//! Key-range arithmetic shared by both backends: the exclusive end of a prefix range.
//!
//! Owns nothing but byte arithmetic; it must not know what keys mean.

/// The smallest key greater than every key starting with `prefix`, or `None`
/// when no such key exists (empty prefix or a prefix of only `0xFF` bytes),
/// meaning "to the end of the keyspace".
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/registry/pods/"), Some(b"/registry/pods0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
    }

    #[test]
    fn prefix_end_of_everything_is_unbounded() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }
}
