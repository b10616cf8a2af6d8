//! The seam between the dispatcher and invocation: what the dispatcher needs to run an event.
//! [`Invoker`] is the real target; the dispatcher's tests use a fake.

use std::future::Future;

use bytes::Bytes;
use fgs_core::flows::AsyncInvokeConfig;
use fgs_core::{FunctionError, Qualifier};

use crate::{FunctionKey, FunctionSource, InvokeError, InvokeOptions, Invoker};

/// Runs async events for the dispatcher.
pub trait AsyncTarget: Send + Sync + 'static {
    /// The async settings of the function version `qualifier` names (retries, maximum age,
    /// destinations; `None` for the defaults), or why no such version can run.
    fn async_config(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
    ) -> impl Future<Output = Result<Option<AsyncInvokeConfig>, InvokeError>> + Send;

    /// Runs one attempt: the function's result or error, or why it could not run.
    fn run(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
        body: Bytes,
        opts: InvokeOptions,
    ) -> impl Future<Output = Result<Result<Bytes, FunctionError>, InvokeError>> + Send;
}

impl<S: FunctionSource> AsyncTarget for Invoker<S> {
    async fn async_config(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
    ) -> Result<Option<AsyncInvokeConfig>, InvokeError> {
        Ok(self
            .function_record(key, qualifier)
            .await?
            .async_config
            .clone())
    }

    async fn run(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
        body: Bytes,
        opts: InvokeOptions,
    ) -> Result<Result<Bytes, FunctionError>, InvokeError> {
        Ok(self.invoke(key, qualifier, body, opts).await?.result)
    }
}
