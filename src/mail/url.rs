//! The SMTP server's address: parsing an `smtp://` or `smtps://` URL into an
//! [`SmtpTarget`], with the defaults for each kind of security.
//!
//! It must never show a password: not in `Debug`, not in an error.

use super::MailError;

/// The forms an SMTP URL may take, for error messages.
pub const FORMS: &str = "smtp://[user:pass@]host[:port][?tls=starttls|opportunistic] or smtps://[user:pass@]host[:port]";

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: no TLS (a relay on the same host or network).
    Plain,
    /// `smtp://…?tls=starttls` (or `required`): STARTTLS, refusing to go on without it.
    StartTls,
    /// `smtp://…?tls=opportunistic`: STARTTLS when the server offers it.
    Opportunistic,
    /// `smtps://`: TLS from the first byte.
    Wrapper,
}

/// A parsed SMTP URL.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User and password, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish()
    }
}

impl SmtpTarget {
    /// `smtp://[user:pass@]host[:port][?tls=starttls|required|opportunistic]` or
    /// `smtps://[user:pass@]host[:port]`. Default ports: 25 plain, 587 STARTTLS, 465 TLS.
    pub fn parse(raw: &str) -> Result<SmtpTarget, MailError> {
        let bad = |reason: &str| MailError::Url {
            url: redact(raw),
            reason: reason.to_string(),
        };
        let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("it has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let mut tls = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "tls" => tls = Some(v.into_owned()),
                other => return Err(bad(&format!("unknown parameter {other:?}"))),
            }
        }
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtp", None | Some("none")) => Security::Plain,
            ("smtp", Some("starttls" | "required")) => Security::StartTls,
            ("smtp", Some("opportunistic")) => Security::Opportunistic,
            ("smtps", None | Some("wrapper")) => Security::Wrapper,
            ("smtp" | "smtps", Some(t)) => {
                return Err(bad(&format!(
                    "tls={t} is not one of starttls, required, opportunistic"
                )))
            }
            (s, _) => return Err(bad(&format!("the scheme {s:?} is not smtp or smtps"))),
        };
        let port = url.port().unwrap_or(match security {
            Security::Plain => 25,
            Security::StartTls | Security::Opportunistic => 587,
            Security::Wrapper => 465,
        });
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad("the credentials are not UTF-8 once percent-decoded"))
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(pass)) => Some((decode(user)?, decode(pass)?)),
            (_, None) => return Err(bad("a user needs a password (user:pass@host)")),
        };
        if url.path().len() > 1 {
            return Err(bad("it has a path"));
        }
        Ok(SmtpTarget {
            host,
            port,
            security,
            credentials,
        })
    }
}

/// The URL with any password replaced, for error messages.
fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_parse_with_defaults_and_errors_hide_passwords() {
        let t = SmtpTarget::parse("smtp://127.0.0.1:2525").expect("plain");
        assert_eq!(
            (t.host.as_str(), t.port, t.security),
            ("127.0.0.1", 2525, Security::Plain)
        );
        assert_eq!(t.credentials, None);
        let t = SmtpTarget::parse("smtp://me%40x.test:p%3Ass@mail.x.test?tls=starttls")
            .expect("starttls");
        assert_eq!((t.port, t.security), (587, Security::StartTls));
        assert_eq!(t.credentials, Some(("me@x.test".into(), "p:ss".into())));
        assert!(!format!("{t:?}").contains("p:ss"));
        let t = SmtpTarget::parse("smtps://mail.x.test").expect("wrapper");
        assert_eq!((t.port, t.security), (465, Security::Wrapper));
        assert_eq!(
            SmtpTarget::parse("smtp://h?tls=opportunistic")
                .expect("opp")
                .security,
            Security::Opportunistic
        );
        for bad in [
            "http://h",
            "smtp://h?tls=maybe",
            "smtp://u@h",
            "smtp://h/path",
            "nonsense",
        ] {
            assert!(SmtpTarget::parse(bad).is_err(), "{bad} accepted");
        }
        let e = SmtpTarget::parse("smtp://u:secret@h?tls=x").expect_err("bad tls");
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
