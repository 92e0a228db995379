//! Which token reads which tenant's database: a read token per tenant database where the
//! engine offers them (InfluxDB 3 Enterprise resource tokens), so a query can only read that
//! tenant's database even if the SQL were wrong; a shared token otherwise.
//!
//! A read token listed for two tenants is a misconfiguration that would let one tenant's
//! queries run with the other's credentials: the engine refuses to use it for either, before
//! any request leaves, rather than trusting the server to refuse.

use std::collections::{HashMap, HashSet};
use std::fmt;

use metrics_store::influx::{Token, token_from_secret_string};
use serde_json::Value;

/// Which token reads which tenant's database.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct QueryTokens {
    /// Used for tenants without their own token.
    shared: Option<Token>,
    /// Read tokens scoped to one tenant's database.
    per_tenant: HashMap<String, Token>,
    /// Tenants whose token is also listed for another tenant: refused.
    ambiguous: HashSet<String>,
}

/// Why a tenant has no token to query with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoToken {
    /// Neither a token of its own nor a shared one.
    Missing,
    /// Its token is also listed for another tenant.
    ListedForAnotherTenant,
}

impl fmt::Debug for QueryTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryTokens")
            .field("shared", &self.shared.is_some())
            .field("tenants", &self.per_tenant.len())
            .field("ambiguous", &self.ambiguous)
            .finish()
    }
}

impl QueryTokens {
    pub fn shared(token: Token) -> Self {
        QueryTokens::new(Some(token), HashMap::new())
    }

    /// A shared token (for tenants without their own) and per-tenant read tokens.
    pub fn new(shared: Option<Token>, per_tenant: HashMap<String, Token>) -> Self {
        // Tokens are compared, never hashed or printed; this runs once per container.
        let ambiguous = per_tenant
            .iter()
            .filter(|(tenant, token)| {
                per_tenant
                    .iter()
                    .any(|(other, t)| other != *tenant && t == *token)
            })
            .map(|(tenant, _)| tenant.clone())
            .collect();
        QueryTokens {
            shared,
            per_tenant,
            ambiguous,
        }
    }

    /// From a secret: a bare token (shared), or JSON `{"token": "…", "tenants": {"<tenant>":
    /// "<read token>", …}}` (both members optional).
    pub fn from_secret_string(secret: &str) -> Option<Self> {
        match serde_json::from_str::<Value>(secret) {
            Ok(Value::Object(map)) => {
                let shared = map
                    .get("token")
                    .and_then(Value::as_str)
                    .map(|t| Token::new(t.trim()))
                    .filter(|t| !t.is_empty());
                let per_tenant: HashMap<String, Token> = map
                    .get("tenants")
                    .and_then(Value::as_object)
                    .map(|t| {
                        t.iter()
                            .filter_map(|(k, v)| Some((k.clone(), Token::new(v.as_str()?.trim()))))
                            .filter(|(_, t)| !t.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                (shared.is_some() || !per_tenant.is_empty()).then(|| QueryTokens::new(shared, per_tenant))
            }
            _ => token_from_secret_string(secret).map(QueryTokens::shared),
        }
    }

    /// The token that reads `tenant`'s database: its own, else the shared one. A tenant whose
    /// token is listed for another tenant too gets none (not the shared one either).
    pub fn for_tenant(&self, tenant: &str) -> Result<&Token, NoToken> {
        if self.ambiguous.contains(tenant) {
            return Err(NoToken::ListedForAnotherTenant);
        }
        self.per_tenant
            .get(tenant)
            .or(self.shared.as_ref())
            .ok_or(NoToken::Missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_per_tenant_or_shared_and_are_never_printed() {
        let t = QueryTokens::from_secret_string(r#"{"token":"shared-x","tenants":{"acme":"read-acme"}}"#)
            .unwrap();
        assert_eq!(t.for_tenant("acme"), Ok(&Token::new("read-acme")));
        assert_eq!(t.for_tenant("other"), Ok(&Token::new("shared-x")));
        assert!(!format!("{t:?}").contains("read-acme") && !format!("{t:?}").contains("shared-x"));
        assert_eq!(
            QueryTokens::from_secret_string("bare").unwrap().for_tenant("any"),
            Ok(&Token::new("bare"))
        );
        let only = QueryTokens::from_secret_string(r#"{"tenants":{"acme":"r"}}"#).unwrap();
        assert_eq!(only.for_tenant("other"), Err(NoToken::Missing));
    }

    #[test]
    fn a_token_listed_for_two_tenants_serves_neither_and_the_shared_one_is_not_a_fallback() {
        let t = QueryTokens::from_secret_string(
            r#"{"token":"shared","tenants":{"acme":"same","globex":"same","initech":"own"}}"#,
        )
        .unwrap();
        assert_eq!(t.for_tenant("acme"), Err(NoToken::ListedForAnotherTenant));
        assert_eq!(t.for_tenant("globex"), Err(NoToken::ListedForAnotherTenant));
        assert_eq!(t.for_tenant("initech"), Ok(&Token::new("own")));
        assert_eq!(t.for_tenant("other"), Ok(&Token::new("shared")));
    }
}
