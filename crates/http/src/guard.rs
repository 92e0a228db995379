//! Address guards: a client built with an [`AddressFilter`] connects only to addresses the
//! filter allows. Names are resolved here and every address is checked before a connection
//! is made, so the address checked is the address connected to (a name that resolves to a
//! refused address once, and to an allowed one when checked, cannot slip through). Outgoing
//! webhooks use it against server-side request forgery.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

/// Whether a client may connect to an address.
pub type AddressFilter = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// A connection refused because of its address (never attempted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the address {0} is not allowed")]
pub struct AddressRefused(pub IpAddr);

/// The client's resolver: the system's, then the filter over every address of the name.
#[derive(Clone, Default)]
pub struct GuardedResolver {
    filter: Option<AddressFilter>,
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("filtered", &self.filter.is_some())
            .finish()
    }
}

impl GuardedResolver {
    pub fn new(filter: Option<AddressFilter>) -> Self {
        GuardedResolver { filter }
    }

    /// The first address `filter` refuses, if any.
    pub fn refused(&self, addresses: impl IntoIterator<Item = IpAddr>) -> Option<IpAddr> {
        let filter = self.filter.as_ref()?;
        addresses.into_iter().find(|ip| !filter(*ip))
    }
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let resolver = self.clone();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            // One refused address refuses the name: a host that also resolves to an internal
            // address is not a host to call.
            if let Some(ip) = resolver.refused(addresses.iter().map(SocketAddr::ip)) {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    AddressRefused(ip),
                ));
            }
            Ok(addresses.into_iter())
        })
    }
}

/// The refused address in an error's chain of causes, if that is why it failed.
pub(crate) fn refused_in(error: &(dyn std::error::Error + 'static)) -> Option<IpAddr> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(refused) = e.downcast_ref::<AddressRefused>() {
            return Some(refused.0);
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(refused) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<AddressRefused>())
        {
            return Some(refused.0);
        }
        next = e.source();
    }
    None
}
