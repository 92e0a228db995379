//! A credential value that cannot be printed: `Debug` and `Display` show `[redacted]`, so a
//! secret in a config struct, an error, a log field or a dead letter never leaks by accident.

use std::fmt;

use http::HeaderValue;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value as given (a hash salt must not be altered, so nothing is trimmed).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (an `Authorization` header, a hash salt).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `<scheme> <value>` as a header value marked sensitive, so hyper never logs it; `None`
    /// when the value cannot be a header.
    pub fn authorization(&self, scheme: &str) -> Option<HeaderValue> {
        let mut value = HeaderValue::from_str(&format!("{scheme} {}", self.0)).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_debug_nor_display_shows_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(
            format!("{secret} {secret:?} {:?}", Some(&secret)),
            "[redacted] [redacted] Some([redacted])"
        );
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn the_authorization_header_is_marked_sensitive() {
        let header = Secret::new("abc").authorization("Bearer");
        assert_eq!(
            header.as_ref().map(|h| (h.is_sensitive(), h.to_str().ok())),
            Some((true, Some("Bearer abc")))
        );
        assert_eq!(Secret::new("line\nbreak").authorization("Token"), None);
    }
}
