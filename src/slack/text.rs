//! Text drbot shows but never lets Slack interpret (SPEC §10): whatever a user typed —
//! reasons, titles, updates, summaries, the command itself — is escaped the way Slack asks
//! (`&`, `<`, `>`), so it can never mention, broadcast (`<!channel>`, `<!here>`) or link.

/// Escapes `&`, `<` and `>` for Slack's mrkdwn.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !escaped(c, &mut out) {
            out.push(c);
        }
    }
    out
}

/// Pushes Slack's escape of `c` (`&`, `<`, `>`) and answers true, or answers false.
fn escaped(c: char, out: &mut String) -> bool {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        _ => return false,
    }
    true
}

/// Users as mentions, `<@U1>, <@U2>`.
pub fn mentions<S: AsRef<str>>(users: &[S]) -> String {
    listed(users, |u| format!("<@{u}>"))
}

/// Names in code spans, `` `a`, `b` ``.
pub fn codes<S: AsRef<str>>(names: &[S]) -> String {
    listed(names, |n| format!("`{n}`"))
}

fn listed<S: AsRef<str>>(items: &[S], each: impl Fn(&str) -> String) -> String {
    items
        .iter()
        .map(|i| each(i.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a requester is named in a message: a Slack user as a mention; drbot's own schedule
/// by name (it is not a Slack user).
pub fn mention(user: &str) -> String {
    if user == crate::config::SCHEDULER {
        "drbot's schedule".to_string()
    } else {
        format!("<@{user}>")
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn user_text_cannot_mention_broadcast_or_link() {
        assert_eq!(
            escape("<!channel> pre-approved by <@U0SECOFF1> <https://evil.example|docs> & co"),
            "&lt;!channel&gt; pre-approved by &lt;@U0SECOFF1&gt; &lt;https://evil.example|docs&gt; &amp; co"
        );
        assert_eq!(
            escape("plain text, `code` *bold*"),
            "plain text, `code` *bold*"
        );
    }
}

/// Text a user typed, made inert for any Slack surface: `&`, `<`, `>` escaped (no mention,
/// link or `<!channel>`), every line break and control character shown as ` ⏎ ` or a space
/// (no line of it can start a fake line of drbot's), and mrkdwn's markers (`` ` `` `*` `_`
/// `~`) replaced by look-alikes that format nothing (ˋ ∗ ＿ ∼), so a code span cannot be
/// broken out of and nothing renders bold, italic or struck; a leading `>` is escaped too.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if escaped(c, &mut out) {
            continue;
        }
        match c {
            '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => out.push_str(" ⏎ "),
            '`' => out.push('ˋ'),
            '*' => out.push('∗'),
            '_' => out.push('＿'),
            '~' => out.push('∼'),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod inert_tests {
    use super::inert;

    #[test]
    fn typed_text_cannot_format_mention_or_start_a_line() {
        let typed = "x` \n*Block* `203.0.113.77`\r\n> _quoted_ ~gone~ <!channel> & more";
        let shown = inert(typed);
        for live in ['`', '*', '_', '~', '\n', '\r', '<', '>'] {
            assert!(!shown.contains(live), "{live:?} left in {shown}");
        }
        assert_eq!(
            shown,
            "xˋ  ⏎ ∗Block∗ ˋ203.0.113.77ˋ ⏎  ⏎ &gt; ＿quoted＿ ∼gone∼ &lt;!channel&gt; &amp; more"
        );
        assert_eq!(inert("credential stuffing"), "credential stuffing");
    }
}
