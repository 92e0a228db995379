//! The invocation's event bytes, handed to the handler untouched.
//!
//! `lambda_runtime` deserialises every event into an owned payload (through
//! `serde_path_to_error`) before the handler runs. For a 3 MB Firehose batch that is a copy of
//! every record and an allocation per string, about as much work as the transform itself.
//! [`EventBytes::layer`] runs before that step: it takes the body out of the invocation, leaves
//! `null` in its place (so the runtime deserialises a `()` payload for free), and keeps the
//! bytes for the handler, which parses them once into types that borrow from them.
//!
//! The slot holds one body: it serves `Runtime::run`, which handles one invocation at a time.

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use lambda_runtime::LambdaInvocation;
use lambda_runtime::tower::{Layer, Service};

/// What the runtime deserialises instead of the event.
const PLACEHOLDER: &[u8] = b"null";

/// The body of the invocation in progress, between the layer and the handler.
#[derive(Debug, Clone, Default)]
pub struct EventBytes(Arc<Mutex<Option<bytes::Bytes>>>);

impl EventBytes {
    /// The runtime layer that fills this slot. Add it last, so it sees the invocation first.
    pub fn layer(&self) -> RawEventLayer {
        RawEventLayer(self.clone())
    }

    /// The current invocation's bytes; `None` if the layer is not installed or they were taken.
    pub fn take(&self) -> Option<bytes::Bytes> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn put(&self, bytes: bytes::Bytes) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(bytes);
    }
}

/// See [`EventBytes::layer`].
#[derive(Debug, Clone)]
pub struct RawEventLayer(EventBytes);

impl<S> Layer<S> for RawEventLayer {
    type Service = RawEventService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RawEventService {
            slot: self.0.clone(),
            inner,
        }
    }
}

/// See [`EventBytes::layer`].
#[derive(Debug, Clone)]
pub struct RawEventService<S> {
    slot: EventBytes,
    inner: S,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for RawEventService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        let body = std::mem::replace(&mut invocation.body, bytes::Bytes::from_static(PLACEHOLDER));
        self.slot.put(body);
        self.inner.call(invocation)
    }
}
