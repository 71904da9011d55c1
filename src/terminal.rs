//! Text that came from the cloud or from the instances, made safe to print
//! on an operator's terminal.
//!
//! What an instance writes to its log, a command's output, a reason a
//! service gives: any of it may carry characters a terminal obeys rather
//! than shows. ESC starts sequences that write the clipboard (OSC 52),
//! change the window title, move the cursor over earlier lines or make
//! hyperlinks; CR and backspace overwrite what was printed; BEL rings; the
//! C1 controls (U+0080 to U+009F) are ESC sequences in one character to some
//! terminals; bidirectional overrides and isolates (U+202A to U+202E,
//! U+2066 to U+2069) reorder what is shown, so a line reads otherwise than
//! it is. [`visible`] writes each of them as an escape (`\x1b`, `\r`,
//! `\u{202e}`), like `cat -v`, and keeps every other character, ordinary
//! Unicode included.

use std::borrow::Cow;

/// How the text is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// One line: a line feed is shown as `\n` too, so a value cannot start
    /// a line that looks like another one.
    Line,
    /// Lines (a command's output): line feeds are kept.
    Lines,
    /// A JSON text, printed as it is: control characters outside strings
    /// can only be whitespace (JSON allows none raw inside one), so CR and
    /// tab become spaces and line feeds are kept; the characters a JSON
    /// encoder leaves raw inside strings (DEL, C1, the bidirectional
    /// controls) become `\uXXXX` escapes. The JSON means the same.
    Json,
}

/// Whether a terminal may act on `c` rather than show it: the C0 and C1
/// controls and DEL (Unicode's `Cc`), the bidirectional embeddings,
/// overrides, isolates and marks, and the line and paragraph separators.
fn hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `s` with every character a terminal would act on written as an escape
/// (see the module's text); borrowed when there is none. Tabs are kept.
pub fn visible(s: &str, how: Shown) -> Cow<'_, str> {
    let kept = |c: char| match c {
        '\t' => true,
        '\n' => how != Shown::Line,
        c => !hostile(c),
    };
    if s.chars().all(kept) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if kept(c) {
            out.push(c);
            continue;
        }
        match (how, c) {
            (Shown::Json, '\r') => out.push(' '),
            (Shown::Json, c) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            (_, '\n') => out.push_str("\\n"),
            (_, '\r') => out.push_str("\\r"),
            (_, c) if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            (_, c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_terminal_would_obey_is_shown_as_escapes() {
        // An OSC 52 clipboard write, a title change, a cursor move up and a
        // line erase, CR, BEL, backspace, a hyperlink.
        let attack = "ok\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;pwned\x07\x1b[1A\x1b[2K\rfake\x08!\x1b]8;;http://x\x1b\\y";
        let shown = visible(attack, Shown::Line);
        assert_eq!(
            shown,
            "ok\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b]0;pwned\\x07\\x1b[1A\\x1b[2K\\rfake\\x08!\\x1b]8;;http://x\\x1b\\y"
        );
        assert!(!shown.chars().any(hostile));
        // Bidirectional overrides and isolates, C1 controls, DEL.
        assert_eq!(
            visible(
                "a\u{202e}gpj.exe\u{202c} \u{2066}b\u{2069} \u{9b}31m \u{85}\x7f",
                Shown::Line
            ),
            "a\\u{202e}gpj.exe\\u{202c} \\u{2066}b\\u{2069} \\u{9b}31m \\u{85}\\x7f"
        );
    }

    #[test]
    fn ordinary_text_is_kept_as_it_is() {
        let s = "Grüße, 東京, café ☕ 👩‍💻 tab\there \\x1b stays";
        assert!(matches!(visible(s, Shown::Line), Cow::Borrowed(_)));
        assert_eq!(visible(s, Shown::Lines), s);
    }

    #[test]
    fn line_feeds_are_kept_only_where_lines_are_expected() {
        assert_eq!(visible("a\nb\r\n", Shown::Line), "a\\nb\\r\\n");
        assert_eq!(visible("a\nb\r\n", Shown::Lines), "a\nb\\r\n");
    }

    #[test]
    fn json_stays_the_same_json() {
        let v = serde_json::json!({"m": "a\u{7f}\u{9b}\u{202e}\u{1F600}b", "n": 1});
        let text = serde_json::to_string_pretty(&v).unwrap();
        // serde_json escapes the C0 controls but not these.
        assert!(text.contains('\u{202e}'));
        let shown = visible(&text, Shown::Json);
        assert!(!shown.chars().any(|c| c != '\n' && hostile(c)), "{shown}");
        assert!(shown.contains("\\u007f\\u009b\\u202e"), "{shown}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&shown).unwrap(),
            v
        );
        // Raw CR and tab between tokens become spaces.
        let raw = "{\r\"a\":\t1}";
        assert_eq!(visible(raw, Shown::Json), "{ \"a\":\t1}");
    }
}
