//! Just enough XML for the realism proxy to read and rewrite the emulator's
//! query-protocol and REST-XML answers: find an element, split a list into
//! its items, read and replace an element's text.

/// The span of one element: `<tag ...>` starts at `open`, its content is
/// `inner`, `</tag>` ends at `end` (exclusive). Self-closing elements have
/// an empty `inner`.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub open: usize,
    pub inner: (usize, usize),
    pub end: usize,
}

fn is_tag_at(s: &str, at: usize, tag: &str) -> bool {
    s[at..].starts_with(tag)
        && matches!(
            s.as_bytes().get(at + tag.len()),
            Some(b'>') | Some(b' ') | Some(b'/') | Some(b'\n') | Some(b'\t') | Some(b'\r')
        )
}

/// The first element named `tag` at or after `from`, nested ones of the
/// same name matched properly.
pub fn find(s: &str, tag: &str, from: usize) -> Option<Span> {
    let open_pat = format!("<{tag}");
    let close_pat = format!("</{tag}>");
    let mut i = from;
    let open = loop {
        let at = i + s.get(i..)?.find(&open_pat)?;
        if is_tag_at(s, at + 1, tag) {
            break at;
        }
        i = at + 1;
    };
    let head_end = open + s[open..].find('>')?;
    if s.as_bytes()[head_end - 1] == b'/' {
        return Some(Span {
            open,
            inner: (head_end + 1, head_end + 1),
            end: head_end + 1,
        });
    }
    let mut depth = 1;
    let mut i = head_end + 1;
    loop {
        let next_open = s[i..].find(&open_pat).map(|p| p + i);
        let next_close = s[i..].find(&close_pat).map(|p| p + i)?;
        match next_open {
            Some(o) if o < next_close => {
                let h = o + s[o..].find('>')?;
                if is_tag_at(s, o + 1, tag) && s.as_bytes()[h - 1] != b'/' {
                    depth += 1;
                }
                i = h + 1;
            }
            _ => {
                depth -= 1;
                if depth == 0 {
                    return Some(Span {
                        open,
                        inner: (head_end + 1, next_close),
                        end: next_close + close_pat.len(),
                    });
                }
                i = next_close + close_pat.len();
            }
        }
    }
}

/// The child elements directly inside `inner`, as absolute spans.
pub fn children(s: &str, inner: (usize, usize)) -> Vec<Span> {
    let mut out = Vec::new();
    let mut i = inner.0;
    while i < inner.1 {
        let Some(lt) = s[i..inner.1].find('<') else {
            break;
        };
        let at = i + lt;
        let name_end = s[at + 1..]
            .find(|c: char| c == '>' || c == ' ' || c == '/' || c.is_whitespace())
            .map(|p| p + at + 1)
            .unwrap_or(inner.1);
        let name = &s[at + 1..name_end];
        if name.is_empty() || name.starts_with('!') || name.starts_with('?') {
            i = at + 1;
            continue;
        }
        match find(s, name, at) {
            Some(sp) if sp.open == at => {
                out.push(sp);
                i = sp.end;
            }
            _ => break,
        }
    }
    out
}

/// The text of the first `tag` inside `s`.
pub fn text<'a>(s: &'a str, tag: &str) -> Option<&'a str> {
    find(s, tag, 0).map(|sp| &s[sp.inner.0..sp.inner.1])
}

/// `s` with the text of its first `tag` replaced by `value`.
pub fn set_text(s: &str, tag: &str, value: &str) -> String {
    match find(s, tag, 0) {
        Some(sp) => format!("{}{}{}", &s[..sp.inner.0], value, &s[sp.inner.1..]),
        None => s.to_string(),
    }
}

/// `s` without its first `tag` element (if any).
pub fn remove(s: &str, tag: &str) -> String {
    match find(s, tag, 0) {
        Some(sp) => format!("{}{}", &s[..sp.open], &s[sp.end..]),
        None => s.to_string(),
    }
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `body` with each item of list `list` replaced where `f` returns a new one.
pub fn rewrite_items(body: &str, list: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let Some(sp) = find(body, list, 0) else {
        return body.to_string();
    };
    let mut out = String::from(&body[..sp.inner.0]);
    let mut last = sp.inner.0;
    for item in children(body, sp.inner) {
        out.push_str(&body[last..item.open]);
        let e = &body[item.open..item.end];
        out.push_str(&f(e).unwrap_or_else(|| e.to_string()));
        last = item.end;
    }
    out.push_str(&body[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_elements_and_splits_lists() {
        let x = "<r><vpcSet><item><vpcId>a</vpcId><tagSet><item><key>k</key></item></tagSet></item><item><vpcId>b</vpcId><tagSet/></item></vpcSet><nextToken/></r>";
        let set = find(x, "vpcSet", 0).unwrap();
        let items = children(x, set.inner);
        assert_eq!(items.len(), 2);
        assert_eq!(text(&x[items[0].open..items[0].end], "vpcId"), Some("a"));
        assert_eq!(text(&x[items[1].open..items[1].end], "vpcId"), Some("b"));
        assert_eq!(remove(x, "nextToken"), x.replace("<nextToken/>", ""));
        assert_eq!(text(&set_text(x, "vpcId", "z"), "vpcId"), Some("z"));
    }
}
