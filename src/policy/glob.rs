//! Model-name globs: `*` matches any run of characters (including none), anywhere in the
//! pattern; every other character matches itself, case-sensitively. There is no escaping and no
//! `?`. Used by key model allow/block lists and routing groups.

/// Whether `name` matches `pattern`. Backtracks only to the last `*` (at worst
/// O(pattern × name) byte steps); allocates nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.as_bytes(), name.as_bytes());
    let (mut p, mut n) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and where in `name` that `*`'s match ends.
    let mut last_star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                last_star = Some((p, n));
            }
            Some(&c) if c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match last_star {
                // Let the last `*` swallow one more character and retry from there.
                Some((resume, star_end)) => {
                    p = resume;
                    n = star_end + 1;
                    last_star = Some((resume, n));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    /// (pattern, name, matches)
    const CASES: &[(&str, &str, bool)] = &[
        ("*", "", true),
        ("*", "gpt-4o", true),
        ("", "", true),
        ("", "a", false),
        ("gpt-4o", "gpt-4o", true),
        ("gpt-4o", "gpt-4o-mini", false),
        ("gpt-4o", "GPT-4o", false),
        ("gpt-4o*", "gpt-4o", true),
        ("gpt-4o*", "gpt-4o-mini", true),
        ("gpt-4o*", "gpt-4", false),
        ("*-mini", "gpt-4o-mini", true),
        ("*-mini", "gpt-4o-mini-tts", false),
        ("claude-*-4*", "claude-sonnet-4-5", true),
        ("claude-*-4*", "claude-3-5-sonnet", false),
        ("*sonnet*", "claude-3-5-sonnet-latest", true),
        ("a*b*c", "abc", true),
        ("a*b*c", "aXbYbZc", true),
        ("a*b*c", "aXbYcZ", false),
        ("a**c", "ac", true),
        ("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ("?", "x", false),
        ("models/*", "models/gemini-2.5-pro", true),
        ("é*", "éclair", true),
    ];

    #[test]
    fn globs() {
        for &(pattern, name, expected) in CASES {
            assert_eq!(glob_match(pattern, name), expected, "{pattern:?} vs {name:?}");
        }
    }
}
