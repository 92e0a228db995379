//! The API token: a value that cannot be printed. `Debug` and `Display` show `[redacted]`, so
//! it never reaches a log, an error or a dead letter by accident.

use std::fmt;

use http::HeaderValue;

#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Token {
        Token(value.into().trim().to_owned())
    }

    /// Reads a token from a Secrets Manager secret string: the whole string, or the `token`
    /// (or `apiToken`) member of a JSON object.
    pub fn from_secret_string(secret: &str) -> Option<Token> {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(secret) {
            return ["token", "apiToken", "api_token"]
                .iter()
                .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
                .map(Token::new)
                .filter(|t| !t.is_empty());
        }
        Some(Token::new(secret)).filter(|t| !t.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Authorization: <scheme> <token>`, marked sensitive so hyper never logs it.
    pub fn header(&self, scheme: &str) -> Option<HeaderValue> {
        let mut value = HeaderValue::from_str(&format!("{scheme} {}", self.0)).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_debug_nor_display_shows_the_value() {
        let t = Token::new("s3cr3t");
        assert_eq!(
            format!("{t} {t:?} {:?}", Some(&t)),
            "[redacted] [redacted] Some([redacted])"
        );
    }

    #[test]
    fn a_secret_is_a_bare_token_or_a_json_object_with_one() {
        assert_eq!(Token::from_secret_string(" abc \n"), Some(Token::new("abc")));
        assert_eq!(
            Token::from_secret_string(r#"{"token":"xyz","username":"u"}"#),
            Some(Token::new("xyz"))
        );
        assert_eq!(
            Token::from_secret_string(r#"{"username":"u","password":"p"}"#),
            None
        );
        assert_eq!(Token::from_secret_string("  "), None);
    }

    #[test]
    fn the_header_is_marked_sensitive() {
        let h = Token::new("abc").header("Bearer").unwrap();
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Bearer abc");
    }
}
