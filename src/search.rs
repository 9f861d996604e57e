//! Search: what a word is, which words a conversation is found by, and what a query is.
//!
//! A word is a run of letters and digits (Unicode), in NFC and lower case, so "Müller",
//! "MÜLLER" and a decomposed "Mu\u{308}ller" are one word. A conversation is found by
//! the words of its messages' texts and of its contact's first name, last name and
//! email, and by every email address among them kept whole ("ada.king@example.com" is
//! found by `ada`, `king`, `example`, `com` and by the whole address). A query is up to
//! [`MAX_WORDS`] terms that must all match: a term containing `@` is a prefix of a whole
//! address; any other text gives its words, each a prefix of a word (`refu` finds
//! "Refund"; `und` does not). So every query is a prefix lookup in an index of words,
//! never a scan of messages. Words are cut to [`MAX_WORD_CHARS`] characters when
//! indexed and when looked up, so a longer query word also finds a word that only
//! shares its first characters.
//!
//! This module is pure: no store, no frames (the store (`kv_store::listing`) keeps the
//! index; `listing` carries a query into a list request).

use std::collections::BTreeSet;

use icu_normalizer::ComposingNormalizerBorrowed;
use widget_protocol::Contact;

/// The most characters of one word that are indexed and looked up.
pub const MAX_WORD_CHARS: usize = 32;
/// The most characters a query may have.
pub const MAX_QUERY_CHARS: usize = 200;
/// The most terms (words and addresses) a query may have.
pub const MAX_WORDS: usize = 8;

/// What is wrong with a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("a query has at most {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error("a query has at most {MAX_WORDS} words")]
    TooManyWords,
}

/// A parsed query: terms that must all begin a word (or an address) of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    terms: Vec<String>,
}

impl Query {
    /// The query in `text`; None when it has no word (blank, or only punctuation).
    pub fn parse(text: &str) -> Result<Option<Query>, QueryError> {
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let mut found = Vec::new();
        for chunk in normalize(text).split_whitespace() {
            match address(chunk) {
                Some(whole) => found.push(cut(whole)),
                None => found.extend(words(chunk)),
            }
            if found.len() > MAX_WORDS {
                return Err(QueryError::TooManyWords);
            }
        }
        let terms: BTreeSet<String> = found.into_iter().collect();
        // A term that begins another is implied by it: `ada adam` is `adam`.
        let all: Vec<String> = terms.into_iter().collect();
        let terms: Vec<String> = all
            .iter()
            .filter(|t| !all.iter().any(|o| o != *t && o.starts_with(t.as_str())))
            .cloned()
            .collect();
        Ok((!terms.is_empty()).then_some(Query { terms }))
    }

    /// The terms, each a prefix to look up; at least one, sorted, none a prefix of another.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }
}

/// NFC and lower case: the form of everything indexed and looked up.
fn normalize(text: &str) -> String {
    ComposingNormalizerBorrowed::new_nfc()
        .normalize(text)
        .to_lowercase()
}

fn cut(word: &str) -> String {
    word.chars().take(MAX_WORD_CHARS).collect()
}

/// The words of already normalized text.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(cut)
}

/// `chunk` (normalized, no whitespace) as an email address without the punctuation
/// around it, when it is one: something, `@`, something.
fn address(chunk: &str) -> Option<&str> {
    let trimmed = chunk.trim_matches(|c: char| !c.is_alphanumeric());
    let (local, domain) = trimmed.split_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !trimmed.chars().any(char::is_control))
        .then_some(trimmed)
}

/// The words (and whole addresses) a text is found by.
pub fn text_tokens(text: &str, into: &mut BTreeSet<String>) {
    let text = normalize(text);
    for chunk in text.split_whitespace() {
        if let Some(whole) = address(chunk) {
            into.insert(cut(whole));
        }
        into.extend(words(chunk));
    }
}

/// The words a contact is found by: its names' and its email's, and the email whole.
pub fn contact_tokens(contact: &Contact, into: &mut BTreeSet<String>) {
    for text in [&contact.first_name, &contact.last_name]
        .into_iter()
        .flatten()
    {
        text_tokens(text, into);
    }
    text_tokens(&contact.email, into);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<String> {
        let mut set = BTreeSet::new();
        text_tokens(text, &mut set);
        set.into_iter().collect()
    }

    fn terms(q: &str) -> Vec<String> {
        Query::parse(q)
            .expect("valid")
            .map(|q| q.terms().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn words_are_letters_and_digits_in_lower_case() {
        assert_eq!(
            tokens("Refund, please! Order #A-1234."),
            ["1234", "a", "order", "please", "refund"]
        );
        assert_eq!(tokens("  ...  "), Vec::<String>::new());
    }

    #[test]
    fn umlauts_are_one_word_however_they_are_typed() {
        assert_eq!(tokens("MÜLLER Straße"), ["müller", "straße"]);
        assert_eq!(tokens("Mu\u{308}ller"), ["müller"], "decomposed ü");
        assert_eq!(terms("MÜL"), ["mül"]);
    }

    #[test]
    fn an_address_is_kept_whole_besides_its_words() {
        assert_eq!(
            tokens("write to <Ada.King@Example.com>."),
            [
                "ada",
                "ada.king@example.com",
                "com",
                "example",
                "king",
                "to",
                "write"
            ]
        );
    }

    #[test]
    fn a_contact_is_found_by_its_names_and_email() {
        let contact = Contact {
            id: "c".into(),
            email: "j.doe@mail.example".into(),
            first_name: Some("Jörg".into()),
            last_name: Some("van Doe".into()),
            source: widget_protocol::ContactSource::Agent,
            created_at: 0,
        };
        let mut set = BTreeSet::new();
        contact_tokens(&contact, &mut set);
        let got: Vec<_> = set.into_iter().collect();
        assert_eq!(
            got,
            [
                "doe",
                "example",
                "j",
                "j.doe@mail.example",
                "jörg",
                "mail",
                "van"
            ]
        );
    }

    #[test]
    fn a_query_is_its_words_and_addresses_without_repeats() {
        assert_eq!(terms("Refu  ORDER"), ["order", "refu"]);
        assert_eq!(terms("ada@exa"), ["ada@exa"]);
        assert_eq!(
            terms("ada adam"),
            ["adam"],
            "a prefix of another term is implied"
        );
        assert_eq!(terms("re-fund"), ["fund", "re"]);
        assert!(Query::parse("   ").expect("valid").is_none());
        assert!(Query::parse("?!").expect("valid").is_none());
    }

    #[test]
    fn long_queries_and_many_words_are_refused() {
        assert_eq!(Query::parse(&"a".repeat(201)), Err(QueryError::TooLong));
        assert!(Query::parse(&"a".repeat(200)).is_ok());
        let nine = "a b c d e f g h i";
        assert_eq!(Query::parse(nine), Err(QueryError::TooManyWords));
        assert!(Query::parse("a b c d e f g h").is_ok());
        assert_eq!(
            Query::parse(&["w"; 30].join(" ")),
            Err(QueryError::TooManyWords),
            "words are counted as typed"
        );
    }

    #[test]
    fn long_words_are_cut_the_same_way_when_indexed_and_looked_up() {
        let long = "x".repeat(100);
        assert_eq!(tokens(&long), ["x".repeat(MAX_WORD_CHARS)]);
        assert_eq!(terms(&long), ["x".repeat(MAX_WORD_CHARS)]);
    }
}
