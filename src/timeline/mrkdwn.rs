//! Slack's mrkdwn, as drbot's events hold it, turned into HTML, Markdown or plain text for
//! exports: bold, italics, strikethrough, code, links (shown as text, never followed),
//! mentions as names, emoji shortcodes as emoji. Text a user typed was stored escaped
//! (`&lt;`, `&gt;`, `&amp;`): it is decoded once and escaped again for the target, so it
//! can never become markup there either.

use super::names::Names;

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Bold(String),
    Italic(String),
    Strike(String),
    Code(String),
    Pre(String),
    /// `<url|label>`: shown as its label and address, as text.
    Link {
        url: String,
        label: Option<String>,
    },
    User(String),
    Channel {
        id: String,
        name: Option<String>,
    },
    /// `<!here>`, `<!channel>`, `<!everyone>`.
    Broadcast(String),
    Emoji(String),
}

/// The emoji drbot and Slack users commonly write, by shortcode.
const EMOJI: &[(&str, &str)] = &[
    ("white_check_mark", "✅"),
    ("heavy_check_mark", "✔️"),
    ("x", "❌"),
    ("no_entry", "⛔"),
    ("no_entry_sign", "🚫"),
    ("warning", "⚠️"),
    ("rotating_light", "🚨"),
    ("bell", "🔔"),
    ("loudspeaker", "📢"),
    ("memo", "📝"),
    ("unlock", "🔓"),
    ("lock", "🔒"),
    ("hourglass", "⌛"),
    ("hourglass_flowing_sand", "⏳"),
    ("+1", "👍"),
    ("thumbsup", "👍"),
    ("-1", "👎"),
    ("thumbsdown", "👎"),
    ("white_large_square", "⬜"),
    ("large_green_circle", "🟢"),
    ("red_circle", "🔴"),
    ("rocket", "🚀"),
    ("fire", "🔥"),
    ("eyes", "👀"),
    ("shield", "🛡️"),
    ("camera", "📷"),
    ("floppy_disk", "💾"),
    ("information_source", "ℹ️"),
    ("stopwatch", "⏱️"),
    ("tada", "🎉"),
];

/// The emoji for `:name:` (skin tones ignored), if known.
pub fn emoji(name: &str) -> Option<&'static str> {
    let base = name.split("::").next().unwrap_or(name);
    EMOJI.iter().find(|(n, _)| *n == base).map(|(_, e)| *e)
}

/// Slack's three entities, decoded once.
pub fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Splits `text` into pieces.
pub fn parse(text: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        // Control sequences first: `<…>` is always Slack's (typed `<` is stored as `&lt;`).
        if let Some(start) = rest.find('<') {
            if let Some(len) = rest[start..].find('>') {
                formatted(&rest[..start], &mut pieces);
                pieces.push(control(&rest[start + 1..start + len]));
                rest = &rest[start + len + 1..];
                continue;
            }
        }
        formatted(rest, &mut pieces);
        break;
    }
    pieces
}

fn control(inner: &str) -> Piece {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) => (t, Some(decode(l))),
        None => (inner, None),
    };
    if let Some(id) = target.strip_prefix('@') {
        Piece::User(id.to_string())
    } else if let Some(id) = target.strip_prefix('#') {
        Piece::Channel {
            id: id.to_string(),
            name: label,
        }
    } else if let Some(word) = target.strip_prefix('!') {
        Piece::Broadcast(word.split('^').next().unwrap_or(word).to_string())
    } else {
        Piece::Link {
            url: decode(target),
            label,
        }
    }
}

/// Bold, italics, strikethrough, code and emoji in a run of text without control sequences.
fn formatted(text: &str, out: &mut Vec<Piece>) {
    let chars: Vec<char> = text.chars().collect();
    let mut plain = String::new();
    let mut i = 0;
    let flush = |plain: &mut String, out: &mut Vec<Piece>| {
        if !plain.is_empty() {
            out.push(Piece::Text(decode(plain)));
            plain.clear();
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '`' && chars[i..].starts_with(&['`', '`', '`']) {
            if let Some(end) = find_seq(&chars, i + 3, &['`', '`', '`']) {
                flush(&mut plain, out);
                let body: String = chars[i + 3..end].iter().collect();
                out.push(Piece::Pre(decode(body.trim_matches('\n'))));
                i = end + 3;
                continue;
            }
        }
        if c == '`' {
            if let Some(end) = find_seq(&chars, i + 1, &['`']) {
                flush(&mut plain, out);
                out.push(Piece::Code(decode(
                    &chars[i + 1..end].iter().collect::<String>(),
                )));
                i = end + 1;
                continue;
            }
        }
        if matches!(c, '*' | '_' | '~') && opens(&chars, i) {
            if let Some(end) = closes(&chars, i, c) {
                flush(&mut plain, out);
                let inner = decode(&chars[i + 1..end].iter().collect::<String>());
                out.push(match c {
                    '*' => Piece::Bold(inner),
                    '_' => Piece::Italic(inner),
                    _ => Piece::Strike(inner),
                });
                i = end + 1;
                continue;
            }
        }
        if c == ':' {
            if let Some(end) = chars[i + 1..]
                .iter()
                .take(40)
                .position(|&x| x == ':' || x.is_whitespace())
                .map(|p| p + i + 1)
                .filter(|&e| chars[e] == ':' && e > i + 1)
            {
                let name: String = chars[i + 1..end].iter().collect();
                // `:+1::skin-tone-3:` carries its tone as a second shortcode.
                let mut stop = end;
                let tone = "::skin-tone-";
                let after: String = chars[end..chars.len().min(end + 16)].iter().collect();
                if after.starts_with(tone) {
                    if let Some(p) = chars[end + 2..].iter().position(|&x| x == ':') {
                        stop = end + 2 + p;
                    }
                }
                if name
                    .chars()
                    .all(|x| x.is_ascii_alphanumeric() || "_+-".contains(x))
                    && emoji(&name).is_some()
                {
                    flush(&mut plain, out);
                    out.push(Piece::Emoji(name));
                    i = stop + 1;
                    continue;
                }
            }
        }
        plain.push(c);
        i += 1;
    }
    flush(&mut plain, out);
}

fn find_seq(chars: &[char], from: usize, seq: &[char]) -> Option<usize> {
    (from..chars.len()).find(|&j| chars[j..].starts_with(seq))
}

/// A marker opens at the start or after a space or punctuation, before a non-space.
fn opens(chars: &[char], i: usize) -> bool {
    let before = i == 0 || !chars[i - 1].is_alphanumeric();
    let after = chars.get(i + 1).is_some_and(|c| !c.is_whitespace());
    before && after
}

/// The closing `marker` on the same line, after a non-space and before a non-word character.
fn closes(chars: &[char], open: usize, marker: char) -> Option<usize> {
    (open + 2..chars.len())
        .take_while(|&j| chars[j] != '\n')
        .find(|&j| {
            chars[j] == marker
                && !chars[j - 1].is_whitespace()
                && chars.get(j + 1).is_none_or(|c| !c.is_alphanumeric())
        })
}

/// HTML, escaped everywhere.
pub fn html(text: &str, names: &Names) -> String {
    let mut out = String::new();
    for piece in parse(text) {
        match piece {
            Piece::Text(t) => out.push_str(&esc_br(&t)),
            Piece::Bold(t) => out.push_str(&format!("<strong>{}</strong>", esc_br(&t))),
            Piece::Italic(t) => out.push_str(&format!("<em>{}</em>", esc_br(&t))),
            Piece::Strike(t) => out.push_str(&format!("<del>{}</del>", esc_br(&t))),
            Piece::Code(t) => out.push_str(&format!("<code>{}</code>", esc(&t))),
            Piece::Pre(t) => out.push_str(&format!("<pre>{}</pre>", esc(&t))),
            Piece::Link { url, label } => out.push_str(&format!(
                "<span class=\"link\">{}</span>",
                esc(&link_text(&url, label.as_deref()))
            )),
            Piece::User(id) => out.push_str(&format!(
                "<span class=\"mention\" title=\"{}\">@{}</span>",
                esc(&id),
                esc(&names.name_or_id(&id))
            )),
            Piece::Channel { id, name } => out.push_str(&format!(
                "<span class=\"mention\" title=\"{}\">#{}</span>",
                esc(&id),
                esc(&name.unwrap_or_else(|| names.name_or_id(&id)))
            )),
            Piece::Broadcast(w) => out.push_str(&format!("@{}", esc(&w))),
            Piece::Emoji(name) => match emoji(&name) {
                Some(e) => out.push_str(&format!(
                    "<span class=\"emoji\" title=\":{}:\">{e}</span>",
                    esc(&name)
                )),
                None => out.push_str(&esc(&format!(":{name}:"))),
            },
        }
    }
    out
}

/// Markdown, with every Markdown control character of the text escaped.
pub fn markdown(text: &str, names: &Names) -> String {
    let mut out = String::new();
    for piece in parse(text) {
        match piece {
            Piece::Text(t) => out.push_str(&md_escape(&t)),
            Piece::Bold(t) => out.push_str(&format!("**{}**", md_escape(&t))),
            Piece::Italic(t) => out.push_str(&format!("*{}*", md_escape(&t))),
            Piece::Strike(t) => out.push_str(&format!("~~{}~~", md_escape(&t))),
            Piece::Code(t) | Piece::Pre(t) => out.push_str(&md_code(&t)),
            Piece::Link { url, label } => {
                out.push_str(&md_escape(&link_text(&url, label.as_deref())))
            }
            Piece::User(id) => out.push_str(&md_escape(&format!("@{}", names.name_or_id(&id)))),
            Piece::Channel { id, name } => out.push_str(&md_escape(&format!(
                "#{}",
                name.unwrap_or_else(|| names.name_or_id(&id))
            ))),
            Piece::Broadcast(w) => out.push_str(&md_escape(&format!("@{w}"))),
            Piece::Emoji(name) => out.push_str(emoji(&name).unwrap_or("")),
        }
    }
    out
}

/// Plain text: what a reader sees, without markup.
pub fn plain(text: &str, names: &Names) -> String {
    let mut out = String::new();
    for piece in parse(text) {
        match piece {
            Piece::Text(t)
            | Piece::Bold(t)
            | Piece::Italic(t)
            | Piece::Strike(t)
            | Piece::Code(t)
            | Piece::Pre(t) => out.push_str(&t),
            Piece::Link { url, label } => out.push_str(&link_text(&url, label.as_deref())),
            Piece::User(id) => out.push_str(&format!("@{}", names.name_or_id(&id))),
            Piece::Channel { id, name } => out.push_str(&format!(
                "#{}",
                name.unwrap_or_else(|| names.name_or_id(&id))
            )),
            Piece::Broadcast(w) => out.push_str(&format!("@{w}")),
            Piece::Emoji(name) => out.push_str(emoji(&name).unwrap_or("")),
        }
    }
    out
}

fn link_text(url: &str, label: Option<&str>) -> String {
    match label {
        Some(label) if label != url => format!("{label} ({url})"),
        _ => url.to_string(),
    }
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn esc_br(s: &str) -> String {
    esc(s).replace('\n', "<br>")
}

/// Every character Markdown (CommonMark, GFM tables and autolinks) could read as markup,
/// backslashed: emphasis, code, links, images, headings, lists, HTML, entities, table cells,
/// strikethrough, and the `:` of `scheme://` (no autolink). A newline becomes a space so a
/// table row stays one row.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '!' | '|'
            | '<' | '>' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            ':' if chars.get(i + 1) == Some(&'/') && chars.get(i + 2) == Some(&'/') => {
                out.push_str("\\:");
            }
            // A list or heading marker only matters at the start of a line.
            '-' | '.' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// One Markdown table row of `cells`, each escaped.
pub fn md_row(cells: &[String]) -> String {
    format!(
        "| {} |",
        cells
            .iter()
            .map(|c| md_escape(c))
            .collect::<Vec<_>>()
            .join(" | ")
    )
}

/// Inline code that cannot be closed early by backticks inside it.
fn md_code(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let body = s.replace(['\n', '\r'], " ").replace('|', "\\|");
    format!("{fence} {body} {fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names::from_pairs([("U0SECOFF1", "Sam Okafor"), ("C0123OPS", "ops")])
    }

    #[test]
    fn slack_markup_becomes_html_and_user_text_stays_text() {
        let text = ":white_check_mark: *Snapshot* `drbot-db-1` by <@U0SECOFF1> in <#C0123OPS>: reason &lt;!channel&gt; &lt;script&gt;alert(1)&lt;/script&gt; <https://aws.example/x|console>";
        let html = html(text, &names());
        assert!(html.contains("✅"), "{html}");
        assert!(html.contains("<strong>Snapshot</strong>"), "{html}");
        assert!(html.contains("<code>drbot-db-1</code>"), "{html}");
        assert!(html.contains("@Sam Okafor"), "{html}");
        assert!(html.contains("#ops"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("console (https://aws.example/x)"), "{html}");
        assert!(!html.contains("href"), "{html}");
    }

    #[test]
    fn markdown_escapes_every_control_character_of_user_text() {
        let md = markdown(
            "reason: *bold* [x](http://evil) | # _y_ &lt;b&gt;",
            &names(),
        );
        assert!(md.contains("**bold**"), "{md}");
        assert!(md.contains("\\[x\\]\\(http\\://evil\\)"), "{md}");
        assert!(md.contains("\\|"), "{md}");
        assert!(md.contains("\\#"), "{md}");
        assert!(md.contains("\\<b\\>"), "{md}");
    }

    #[test]
    fn plain_text_drops_markup_and_names_people() {
        assert_eq!(
            plain("*A-1* approved by <@U0SECOFF1> :+1::skin-tone-3:", &names()),
            "A-1 approved by @Sam Okafor 👍"
        );
        assert_eq!(plain("<@U0NOBODY>", &names()), "@U0NOBODY");
    }

    #[test]
    fn unbalanced_markers_and_unknown_shortcodes_are_left_as_text() {
        assert_eq!(
            plain("2 * 3 = 6, snake_case, :nope:", &names()),
            "2 * 3 = 6, snake_case, :nope:"
        );
    }
}
