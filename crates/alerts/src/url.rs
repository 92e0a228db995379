//! Webhook URLs: parsed, checked for form, and checked for where they lead ([`crate::ssrf`])
//! both when an alert is saved and at every delivery (the client resolves and checks again,
//! see [`UrlPolicy::client`]).
//!
//! Deployed, only `https` is accepted. Locally (`metrics-lake serve --allow-local-webhooks`)
//! the policy may also allow `http://127.0.0.1:<port>/…`, and only that: a receiver on this
//! machine for trying alerts out.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use http::Uri;
use metrics_http::{HttpClient, HttpError};

use crate::error::AlertError;
use crate::ssrf::refused_class;

/// The longest URL accepted.
pub const MAX_URL_BYTES: usize = 2_048;

/// Which webhook URLs are accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Also accept `http://127.0.0.1:<port>/…` (local mode only, never in AWS).
    pub allow_local_http: bool,
}

impl UrlPolicy {
    /// Public `https` only: the deployed policy.
    pub const PUBLIC: UrlPolicy = UrlPolicy {
        allow_local_http: false,
    };
    /// Public `https`, and `http://127.0.0.1`.
    pub const LOCAL: UrlPolicy = UrlPolicy {
        allow_local_http: true,
    };

    /// Whether a connection to `ip` may be made under this policy.
    pub fn allows_address(self, ip: IpAddr) -> bool {
        refused_class(ip).is_none() || (self.allow_local_http && ip == IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// The URL, if its form is acceptable (its addresses are checked by [`WebhookUrl::resolve`]).
    pub fn parse(self, text: &str) -> Result<WebhookUrl, AlertError> {
        if text.len() > MAX_URL_BYTES || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(AlertError::InvalidUrl(
                "the URL is at most 2,048 bytes, without spaces",
            ));
        }
        let uri: Uri = text
            .parse()
            .map_err(|_| AlertError::InvalidUrl("the URL is not a valid absolute URL"))?;
        let authority = uri
            .authority()
            .ok_or(AlertError::InvalidUrl("the URL is not a valid absolute URL"))?;
        if authority.as_str().contains('@') {
            return Err(AlertError::InvalidUrl("the URL may not carry credentials"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(AlertError::InvalidUrl("the URL has no host"));
        }
        let literal: Option<IpAddr> = host.parse().ok();
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.allow_local_http && literal == Some(IpAddr::V4(Ipv4Addr::LOCALHOST)) => {}
            Some("http") if self.allow_local_http => {
                return Err(AlertError::InvalidUrl(
                    "the URL must use https (http only to 127.0.0.1 in local mode)",
                ));
            }
            _ => return Err(AlertError::InvalidUrl("the URL must use https")),
        }
        let scheme_http = uri.scheme_str() == Some("http");
        let port = authority.port_u16().unwrap_or(if scheme_http { 80 } else { 443 });
        Ok(WebhookUrl {
            text: text.to_owned(),
            uri: uri.clone(),
            host: host.to_owned(),
            port,
            literal,
            policy: self,
        })
    }

    /// The client deliveries use: it connects only to addresses this policy allows, whatever
    /// a name resolves to at the time, and never follows redirects.
    pub fn client(self) -> Result<HttpClient, HttpError> {
        HttpClient::guarded(Arc::new(move |ip| self.allows_address(ip)))
    }
}

/// A webhook URL whose form was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    text: String,
    uri: Uri,
    host: String,
    port: u16,
    literal: Option<IpAddr>,
    policy: UrlPolicy,
}

impl WebhookUrl {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// Checks where the URL leads: its address, or every address its host resolves to now.
    pub async fn resolve(&self) -> Result<(), AlertError> {
        let addresses: Vec<IpAddr> = match self.literal {
            Some(ip) => vec![ip],
            None => tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|_| AlertError::UnresolvableHost)?
                .map(|a| a.ip())
                .collect(),
        };
        if addresses.is_empty() {
            return Err(AlertError::UnresolvableHost);
        }
        for ip in addresses {
            if !self.policy.allows_address(ip) {
                let class = refused_class(ip).map_or("reserved", |c| c.name());
                return Err(AlertError::AddressNotAllowed(class));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(policy: UrlPolicy, url: &str) -> &'static str {
        match policy.parse(url) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn only_https_urls_without_credentials_are_accepted() {
        let p = UrlPolicy::PUBLIC;
        assert_eq!(code(p, "https://hooks.example.com/alerts?x=1"), "ok");
        assert_eq!(code(p, "https://[2606:4700::1111]:8443/x"), "ok");
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "hooks.example.com/path",
            "/relative",
            "https://user:pass@hooks.example.com/",
            "https://hooks.example.com/a b",
            "",
            "http://127.0.0.1:9000/",
        ] {
            assert_eq!(code(p, bad), "invalid_url", "{bad}");
        }
        assert_eq!(
            code(p, &format!("https://example.com/{}", "a".repeat(2_100))),
            "invalid_url"
        );
    }

    #[test]
    fn local_mode_adds_http_to_127_0_0_1_and_nothing_else() {
        let p = UrlPolicy::LOCAL;
        assert_eq!(code(p, "http://127.0.0.1:9000/hook"), "ok");
        for bad in [
            "http://localhost:9000/",
            "http://10.0.0.1/",
            "http://[::1]:9000/",
            "http://127.0.0.2/",
        ] {
            assert_eq!(code(p, bad), "invalid_url", "{bad}");
        }
    }

    #[tokio::test]
    async fn addresses_are_checked_for_literals_and_resolved_names() {
        let resolve = |policy: UrlPolicy, url: &str| {
            let url = policy.parse(url);
            async move {
                match url {
                    Ok(u) => u.resolve().await.err().map(|e| e.code()),
                    Err(e) => Some(e.code()),
                }
            }
        };
        assert_eq!(resolve(UrlPolicy::PUBLIC, "https://93.184.215.14/x").await, None);
        for (url, class) in [
            ("https://127.0.0.1/", "loopback"),
            ("https://169.254.169.254/latest/meta-data/", "link_local"),
            ("https://10.0.0.8/", "private"),
            ("https://[::ffff:127.0.0.1]/", "loopback"),
            ("https://[::]/", "unspecified"),
            ("https://224.0.0.1/", "multicast"),
            ("https://localhost/", "loopback"),
        ] {
            let err = UrlPolicy::PUBLIC
                .parse(url)
                .map(|u| async move { u.resolve().await });
            let err = match err {
                Ok(f) => f.await.err(),
                Err(e) => Some(e),
            };
            assert_eq!(err, Some(AlertError::AddressNotAllowed(class)), "{url}");
        }
        // Local mode allows this machine's 127.0.0.1, and still no other internal address.
        assert_eq!(resolve(UrlPolicy::LOCAL, "http://127.0.0.1:9/").await, None);
        assert_eq!(
            resolve(UrlPolicy::LOCAL, "https://169.254.169.254/").await,
            Some("address_not_allowed")
        );
    }
}
