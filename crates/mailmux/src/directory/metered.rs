//! A [`Directory`] that times the operations of another for the metrics
//! (`mailmux_directory_seconds`): searches and PreAuth binds, by result.
//!
//! It sits under the route cache, so what it measures is what the directory itself costs;
//! cache hits are counted by the cache ([`super::cache`]).

use std::sync::Arc;
use std::time::Instant;

use mailmux_config::Protocol;
use mailmux_proto::Secret;

use super::{BoxFuture, Directory, DirectoryError, Entry, PasswordProbe, Query};
use crate::control::metrics::{DirectoryOp, DirectoryResult, Metrics};

/// `inner`, timed.
#[derive(Debug)]
pub struct MeteredDirectory {
    inner: Arc<dyn Directory>,
    metrics: Arc<Metrics>,
    service: Protocol,
}

impl MeteredDirectory {
    /// Times `inner`'s operations into `metrics` under `service`.
    pub fn new(inner: Arc<dyn Directory>, metrics: Arc<Metrics>, service: Protocol) -> MeteredDirectory {
        MeteredDirectory { inner, metrics, service }
    }
}

fn result_of<T>(result: &Result<T, DirectoryError>, found: impl Fn(&T) -> bool) -> DirectoryResult {
    match result {
        Ok(value) if found(value) => DirectoryResult::Found,
        Ok(_) => DirectoryResult::NotFound,
        Err(_) => DirectoryResult::Error,
    }
}

impl Directory for MeteredDirectory {
    fn find<'a>(&'a self, query: Query<'a>) -> BoxFuture<'a, Result<Option<Entry>, DirectoryError>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.inner.find(query).await;
            let outcome = result_of(&result, Option::is_some);
            self.metrics.directory(self.service, DirectoryOp::Search, outcome, started.elapsed());
            result
        })
    }

    fn authenticate<'a>(&'a self, dn: &'a str, password: &'a Secret) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.inner.authenticate(dn, password).await;
            let outcome = result_of(&result, |ok| *ok);
            self.metrics.directory(self.service, DirectoryOp::Bind, outcome, started.elapsed());
            result
        })
    }

    fn stored_passwords<'a>(&'a self, dn: &'a str) -> BoxFuture<'a, Result<Vec<Secret>, DirectoryError>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.inner.stored_passwords(dn).await;
            let outcome = result_of(&result, |p| !p.is_empty());
            self.metrics.directory(self.service, DirectoryOp::Search, outcome, started.elapsed());
            result
        })
    }

    fn password_probe<'a>(&'a self, bind_dn: Option<&'a str>) -> BoxFuture<'a, Result<PasswordProbe, DirectoryError>> {
        self.inner.password_probe(bind_dn)
    }
}
