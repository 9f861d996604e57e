//! The follow-up email: what it says ([`render`], a plain-text and an HTML part) and
//! where its "continue the conversation" link may point ([`continue_link`]).
//!
//! Pure functions over what `compose` gathered; they read no store and send nothing.
//! Everything users typed is escaped in the HTML part and made one line wherever it
//! reaches a header, and nothing the visitor typed becomes a link under the team's name
//! (`defang`).

use widget_protocol::Message;

use crate::text::{escape, one_line, utc_minute};

/// Where "continue the conversation" points. The page the visitor reported is only a
/// claim, and the email goes out from the team's sender to an address nobody verified:
/// so it is linked only when it is on one of the inbox's configured origins (the team's
/// own site), and then without user info, query or fragment (the path is the page;
/// a query could steer an open redirect). Otherwise `--public-url`, else the inbox's
/// first origin, else no link. Never a host the visitor chose.
pub fn continue_link(
    page: Option<&str>,
    origins: &[String],
    public_url: Option<&str>,
) -> Option<String> {
    let web = |u: &url::Url| matches!(u.scheme(), "http" | "https") && u.host().is_some();
    let parse = |s: &str| url::Url::parse(s).ok().filter(web);
    let own: Vec<url::Origin> = origins
        .iter()
        .filter_map(|o| parse(o))
        .map(|u| u.origin())
        .collect();
    let on_own_site = page.and_then(parse).filter(|u| own.contains(&u.origin()));
    if let Some(mut u) = on_own_site {
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.set_query(None);
        u.set_fragment(None);
        return Some(u.to_string());
    }
    public_url
        .and_then(parse)
        .map(|u| u.to_string())
        .or_else(|| own.first().map(|o| o.ascii_serialization()))
}

/// The visitor's own text, quoted back in an email the team sends: anything a mail
/// client would turn into a link (`scheme://`, `www.`, `host.tld`, `a@host.tld`) is
/// broken up (`https[:]//evil[.]example`), so nothing a visitor typed becomes a
/// clickable link under the team's name.
fn defang(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if looks_linkable(word) {
            out.push_str(&word.replace("://", "[:]//").replace('.', "[.]"));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for ch in s.chars() {
        if ch.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(ch);
        } else {
            word.push(ch);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Whether a word would be auto-linked: it has a scheme, or a dot followed by a label
/// of two or more letters (a top-level domain).
fn looks_linkable(word: &str) -> bool {
    if word.contains("://") || word.to_ascii_lowercase().starts_with("www.") {
        return true;
    }
    word.split('.').skip(1).any(|label| {
        let letters: String = label.chars().take_while(|c| c.is_alphabetic()).collect();
        letters.chars().count() >= 2
    })
}

/// What goes into a follow-up email.
pub struct Content<'a> {
    pub inbox: &'a str,
    /// Agent replies, oldest first; not empty.
    pub replies: &'a [Message],
    pub last_visitor: Option<&'a Message>,
    /// Where to continue the chat (an http(s) URL, from [`continue_link`]).
    pub link: Option<&'a str>,
}

/// Subject, plain text and HTML of a follow-up email.
pub fn render(c: &Content<'_>) -> (String, String, String) {
    let inbox = one_line(c.inbox);
    let agent = |m: &Message| {
        m.author
            .name
            .as_deref()
            .map(one_line)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| inbox.clone())
    };
    let subject = match c.replies {
        [one] => format!("{} replied to your chat with {inbox}", agent(one)),
        many => format!("{} new replies to your chat with {inbox}", many.len()),
    };
    let intro = if c.replies.len() == 1 {
        format!("You chatted with {inbox} and left before we answered. Here is our reply:")
    } else {
        format!("You chatted with {inbox} and left before we answered. Here are our replies:")
    };

    let mut text = format!("Hello,\n\n{intro}\n\n");
    let mut html = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif;line-height:1.4\">\n<p>Hello,</p>\n<p>{}</p>\n",
        escape(&intro)
    );
    for m in c.replies {
        let (who, when) = (agent(m), utc_minute(m.at));
        text.push_str(&format!("{who}, {when}:\n{}\n\n", indent(&m.text)));
        html.push_str(&format!(
            "<p><strong>{}</strong> <span style=\"color:#666\">{}</span><br>\n{}</p>\n",
            escape(&who),
            escape(&when),
            paragraph(&m.text)
        ));
    }
    if let Some(v) = c.last_visitor {
        let quoted = defang(&v.text);
        text.push_str(&format!("Your last message:\n{}\n\n", indent(&quoted)));
        html.push_str(&format!(
            "<p style=\"color:#666\">Your last message:</p>\n<blockquote style=\"color:#666\">{}</blockquote>\n",
            paragraph(&quoted)
        ));
    }
    if let Some(link) = c.link {
        text.push_str(&format!("Continue the conversation: {link}\n\n"));
        html.push_str(&format!(
            "<p><a href=\"{}\">Continue the conversation</a></p>\n",
            escape(link)
        ));
    }
    text.push_str(&format!("-- \n{inbox}\n"));
    html.push_str(&format!("<p>{}</p>\n</body></html>\n", escape(&inbox)));
    (subject, text, html)
}

/// Line endings as `\n` only (CR alone included).
fn lines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

fn indent(s: &str) -> String {
    lines(s)
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn paragraph(s: &str) -> String {
    lines(s)
        .lines()
        .map(escape)
        .collect::<Vec<_>>()
        .join("<br>\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use widget_protocol::{Author, AuthorKind};

    fn msg(kind: AuthorKind, name: Option<&str>, text: &str, seq: u64) -> Message {
        Message {
            id: format!("m{seq}"),
            conversation_id: "c".into(),
            seq,
            author: Author {
                kind,
                name: name.map(str::to_string),
            },
            text: text.into(),
            at: 1_764_082_800_123,
            attachments: Vec::new(),
        }
    }

    /// The visitor's last message, before the replies.
    fn visitor(text: &str) -> Message {
        msg(AuthorKind::Visitor, None, text, 1)
    }

    #[test]
    fn every_reply_the_last_visitor_message_and_the_link_are_in_both_parts() {
        let replies = [
            msg(AuthorKind::Agent, Some("Maja"), "First", 2),
            msg(AuthorKind::Agent, Some("Maja"), "Second\nline", 3),
            msg(AuthorKind::Agent, Some("Lars"), "Third", 4),
        ];
        let v = visitor("Where is my order?");
        let (subject, text, html) = render(&Content {
            inbox: "Acme",
            replies: &replies,
            last_visitor: Some(&v),
            link: Some("https://shop.example/p?a=1&b=2"),
        });
        assert_eq!(subject, "3 new replies to your chat with Acme");
        for part in [&text, &html] {
            for t in [
                "First",
                "Second",
                "line",
                "Third",
                "Where is my order?",
                "Maja",
                "Lars",
            ] {
                assert!(part.contains(t), "{t} missing from {part}");
            }
            assert!(part.contains("2025-11-25 15:00 UTC"));
        }
        assert!(text.contains("https://shop.example/p?a=1&b=2"));
        assert!(html.contains("href=\"https://shop.example/p?a=1&amp;b=2\""));
    }

    #[test]
    fn hostile_names_and_texts_are_escaped_and_kept_on_one_line() {
        let replies = [msg(
            AuthorKind::Agent,
            Some("Eve\r\nBcc: victim@evil.test <script>"),
            "<script>alert('x')</script>",
            2,
        )];
        let v = visitor("<img src=x onerror=alert(1)>\r\nX-Injected: yes");
        let (subject, _, html) = render(&Content {
            inbox: "Acme\n\"Shop\"",
            replies: &replies,
            last_visitor: Some(&v),
            link: Some("https://x.test/\"><script>"),
        });
        assert!(
            !subject.contains('\r') && !subject.contains('\n'),
            "{subject}"
        );
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(html.contains("Acme &quot;Shop&quot;"));
    }

    #[test]
    fn the_link_is_never_a_host_the_visitor_chose() {
        let own = vec!["https://shop.example".to_string()];
        let public = Some("https://chat.acme.test/");
        let link = |page: &str, origins: &[String], public: Option<&str>| {
            continue_link(Some(page), origins, public)
        };
        assert_eq!(
            link(
                "https://shop.example/p/42?next=//evil.example#x",
                &own,
                public
            )
            .as_deref(),
            Some("https://shop.example/p/42")
        );
        assert_eq!(
            link("https://evil.example/login", &own, public).as_deref(),
            Some("https://chat.acme.test/")
        );
        assert_eq!(
            link("https://shop.example@evil.example/", &own, None).as_deref(),
            Some("https://shop.example")
        );
        assert_eq!(
            link("http://shop.example/p", &own, None).as_deref(),
            Some("https://shop.example"),
            "another scheme is another origin"
        );
        assert_eq!(
            link("https://user:pw@SHOP.example:443/p", &own, None).as_deref(),
            Some("https://shop.example/p")
        );
        assert_eq!(link("https://evil.example/", &[], None), None);
        assert_eq!(
            link("https://evil.example/", &[], public).as_deref(),
            Some("https://chat.acme.test/")
        );
        assert_eq!(continue_link(None, &[], None), None);
    }

    #[test]
    fn links_in_the_visitors_quoted_text_are_broken_up() {
        let replies = [msg(AuthorKind::Agent, Some("Maja"), "See www.acme.test", 2)];
        let v = visitor("Your account is locked: https://evil.example/login or evil.example, mail a@evil.example. Order #4.5 ok?");
        let (_, text, html) = render(&Content {
            inbox: "Acme",
            replies: &replies,
            last_visitor: Some(&v),
            link: None,
        });
        for part in [&text, &html] {
            assert!(!part.contains("evil.example"), "{part}");
            assert!(!part.contains("https://evil"), "{part}");
            assert!(part.contains("https[:]//evil[.]example/login"), "{part}");
            assert!(part.contains("Order #4.5 ok?"), "{part}");
            assert!(
                part.contains("See www.acme.test"),
                "agents' text is kept: {part}"
            );
        }
    }
}
