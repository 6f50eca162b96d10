//! Splits slash-command text into words the way a shell user expects: whitespace separates,
//! double or single quotes group (including the curly quotes Slack clients substitute),
//! and Slack's HTML escapes (`&amp;`, `&lt;`, `&gt;`) are undone first.

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenizeError {
    #[error("a quote opened with {0} is never closed; close it or remove it")]
    UnclosedQuote(char),
}

/// Undoes the three escapes Slack applies to slash-command text.
pub fn unescape_slack(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn closing_quote(open: char) -> Option<char> {
    match open {
        '"' => Some('"'),
        '\'' => Some('\''),
        '\u{201C}' | '\u{201D}' | '\u{201E}' => Some('\u{201D}'),
        '\u{2018}' | '\u{2019}' => Some('\u{2019}'),
        _ => None,
    }
}

/// Splits `text` into words; quoted words may contain spaces and may be empty.
pub fn tokenize(text: &str) -> Result<Vec<String>, TokenizeError> {
    let text = unescape_slack(text);
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            if in_word {
                words.push(std::mem::take(&mut current));
                in_word = false;
            }
            continue;
        }
        if let Some(close) = closing_quote(c) {
            in_word = true;
            let mut closed = false;
            for q in chars.by_ref() {
                // A straight quote closes only itself; a curly one closes either curly form.
                if q == close || (close == '\u{201D}' && q == '\u{201C}') {
                    closed = true;
                    break;
                }
                current.push(q);
            }
            if !closed {
                return Err(TokenizeError::UnclosedQuote(c));
            }
            continue;
        }
        in_word = true;
        current.push(c);
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_whitespace_and_keeps_quoted_words_whole() {
        assert_eq!(
            tokenize(r#"block-ip 1.2.3.4  --reason "credential stuffing" x"#).unwrap(),
            [
                "block-ip",
                "1.2.3.4",
                "--reason",
                "credential stuffing",
                "x"
            ]
        );
    }

    #[test]
    fn understands_curly_quotes_and_slack_escapes() {
        assert_eq!(
            tokenize("update \u{201C}db &amp; api down\u{201D} &lt;b&gt;").unwrap(),
            ["update", "db & api down", "<b>"]
        );
    }

    #[test]
    fn an_unclosed_quote_is_an_error() {
        assert_eq!(
            tokenize("say \"hi").unwrap_err(),
            TokenizeError::UnclosedQuote('"')
        );
    }

    #[test]
    fn empty_quotes_make_an_empty_word() {
        assert_eq!(tokenize("a '' b").unwrap(), ["a", "", "b"]);
    }
}
