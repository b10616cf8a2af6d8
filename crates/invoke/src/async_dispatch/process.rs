//! One event's run: age and retry policy, the outcome recorded under the event's lease, and the
//! destinations notified by the run whose outcome was recorded.

use bytes::Bytes;
use fgs_core::flows::{
    AsyncStatus, Destination, DestinationKind, ASYNC_AGE_DEFAULT, ASYNC_RETRY_DEFAULT,
};
use fgs_core::FunctionRef;
use fgs_instance::InvokeType;
use fgs_store::{AsyncRow, StoreError};
use tokio::sync::oneshot;

use super::{AsyncDispatcher, AsyncTarget, NewEvent};
use crate::{FunctionKey, InvokeError, InvokeOptions};

impl<T: AsyncTarget> AsyncDispatcher<T> {
    pub(super) async fn process(&self, mut row: AsyncRow) {
        // It may have waited for a slot since it was claimed.
        row.started_ms = Some(self.clock.now_ms());
        let key = FunctionKey {
            project: row.project.clone(),
            package: row.package.clone(),
            name: row.name.clone(),
        };
        let qualifier = row.qualifier.clone();
        let invoked_urn = fgs_core::urn::qualified_urn(
            &self.config.region,
            &key.project,
            &key.package,
            &key.name,
            &qualifier,
        );
        let config = match self.target.async_config(&key, &qualifier).await {
            Ok(config) => config,
            Err(e) => {
                // The function or version is gone: nothing can run this event.
                self.finish(&mut row, AsyncStatus::Fail, None, e.to_string())
                    .await;
                return;
            }
        };
        let max_age_ms = i64::from(
            config
                .as_ref()
                .map_or(ASYNC_AGE_DEFAULT, |c| c.max_async_event_age_in_seconds),
        ) * 1000;
        let retries = config
            .as_ref()
            .map_or(ASYNC_RETRY_DEFAULT, |c| c.max_async_retry_attempts);
        let destinations = config.map(|c| c.destination_config).unwrap_or_default();

        if self.clock.now_ms() - row.created_ms > max_age_ms {
            if self
                .finish(
                    &mut row,
                    AsyncStatus::Discard,
                    None,
                    "event age exceeded".into(),
                )
                .await
            {
                self.deliver(
                    &destinations.on_failure,
                    &row,
                    &invoked_urn,
                    "EventAgeExceeded",
                    None,
                )
                .await;
            }
            return;
        }
        let outcome = self
            .target
            .run(
                &key,
                &qualifier,
                Bytes::from(row.body.clone()),
                InvokeOptions {
                    invoke_type: Some(InvokeType::Async),
                    request_id: Some(row.request_id.clone()),
                    invoked_urn: invoked_urn.clone(),
                    headers: Vec::new(),
                    traceparent: None,
                    // Another node's instances take it from the queue instead.
                    forwardable: false,
                },
            )
            .await;
        match outcome {
            Ok(result) => {
                row.attempts += 1;
                match result {
                    Ok(result) => {
                        if self
                            .finish(&mut row, AsyncStatus::Success, None, String::new())
                            .await
                        {
                            self.deliver(
                                &destinations.on_success,
                                &row,
                                &invoked_urn,
                                "Success",
                                Some(result),
                            )
                            .await;
                        }
                    }
                    Err(fe) => {
                        if row.attempts <= retries {
                            self.retry(&mut row, Some(fe.code), fe.message).await;
                        } else {
                            self.finish(
                                &mut row,
                                AsyncStatus::Fail,
                                Some(fe.code),
                                fe.message.clone(),
                            )
                            .await;
                            let payload = Bytes::from(serde_json::to_vec(&fe).unwrap_or_default());
                            self.deliver(
                                &destinations.on_failure,
                                &row,
                                &invoked_urn,
                                "RetriesExhausted",
                                Some(payload),
                            )
                            .await;
                        }
                    }
                }
            }
            // Throttling is not the function's failure, nor is a cluster whose count of
            // instances cannot be reached: try again soon, without using up an attempt, until
            // the event ages out.
            Err(
                e @ (InvokeError::Throttled(_)
                | InvokeError::Disabled(_)
                | InvokeError::Unavailable(..)),
            ) => {
                row.status = AsyncStatus::Wait;
                row.next_attempt_ms = self.clock.now_ms() + 1000;
                row.error_message = e.to_string();
                self.save(&row).await;
            }
            Err(e) => {
                row.attempts += 1;
                if row.attempts <= retries {
                    self.retry(&mut row, None, e.to_string()).await;
                } else {
                    if self
                        .finish(&mut row, AsyncStatus::Fail, None, e.to_string())
                        .await
                    {
                        self.deliver(
                            &destinations.on_failure,
                            &row,
                            &invoked_urn,
                            "RetriesExhausted",
                            None,
                        )
                        .await;
                    }
                }
            }
        }
    }

    async fn retry(&self, row: &mut AsyncRow, code: Option<u32>, message: String) {
        let backoff = self.config.retry_base * 2u32.saturating_pow(row.attempts.saturating_sub(1));
        row.status = AsyncStatus::Wait;
        row.next_attempt_ms = self.clock.now_ms() + backoff.as_millis() as i64;
        row.error_code = code;
        row.error_message = message;
        self.save(row).await;
    }

    /// Ends the event; true if this run's outcome was recorded (its destinations are then
    /// this run's to notify).
    async fn finish(
        &self,
        row: &mut AsyncRow,
        status: AsyncStatus,
        code: Option<u32>,
        message: String,
    ) -> bool {
        row.status = status;
        row.ended_ms = Some(self.clock.now_ms());
        row.error_code = code;
        row.error_message = message;
        self.save(row).await
    }

    /// Records the row's new state under the lease it ran with, and gives the lease up;
    /// false if the lease was lost (another claim runs the event now) or the write failed.
    async fn save(&self, row: &AsyncRow) -> bool {
        self.held.release(&row.request_id);
        let (tx, rx) = oneshot::channel();
        let saved = match self.updater.send((row.clone(), tx)).await {
            Ok(()) => rx.await.unwrap_or_else(|_| {
                Err(StoreError::Backend {
                    op: "update async invocation",
                    source: "the writer stopped".into(),
                })
            }),
            Err(_) => Err(StoreError::Backend {
                op: "update async invocation",
                source: "the writer stopped".into(),
            }),
        };
        match saved {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(
                    request_id = row.request_id,
                    "async event lease lost before its outcome was recorded; the outcome is dropped"
                );
                false
            }
            Err(e) => {
                tracing::error!(request_id = row.request_id, error = %e, "recording an async event's state failed");
                false
            }
        }
    }

    /// Sends an outcome to a destination (SPEC.md 3): another function, as a new async event, or
    /// an HTTP webhook. A failed delivery is logged; it never changes the event's own status.
    async fn deliver(
        &self,
        dest: &Option<Destination>,
        row: &AsyncRow,
        invoked_urn: &str,
        condition: &str,
        response: Option<Bytes>,
    ) {
        let Some(dest) = dest else { return };
        let as_json = |b: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(b).into_owned())
            })
        };
        let record = serde_json::json!({
            "version": "1.0",
            "timestamp": crate::logline::now_iso(),
            "request_id": row.request_id,
            "func_urn": invoked_urn,
            "condition": condition,
            "approximate_invoke_count": row.attempts,
            "error_code": row.error_code,
            "error_message": row.error_message,
            "request_payload": as_json(&row.body),
            "response_payload": response.as_deref().map(as_json),
        });
        let param: serde_json::Value = serde_json::from_str(&dest.param).unwrap_or_default();
        let result = match dest.destination {
            DestinationKind::FunctionGraph => {
                let target = param.get("func_urn").and_then(|v| v.as_str()).unwrap_or("");
                match FunctionRef::parse(target) {
                    Ok(r) if r.project.as_deref().is_none_or(|p| p == row.project) => {
                        let ev = NewEvent {
                            key: FunctionKey {
                                project: row.project.clone(),
                                package: r.package.clone(),
                                name: r.name.clone(),
                            },
                            qualifier: r.qualifier_or_latest(),
                            body: Bytes::from(record.to_string()),
                            source: format!("destination:{}", row.request_id),
                        };
                        Box::pin(self.submit(ev, None))
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                    Ok(_) => Err(format!(
                        "destination function {target} is in another project"
                    )),
                    Err(e) => Err(format!("destination func_urn {target:?}: {e}")),
                }
            }
            DestinationKind::Http => {
                let url = param.get("url").and_then(|v| v.as_str()).unwrap_or("");
                match self.http.post(url).json(&record).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("webhook {url} answered {}", r.status())),
                    Err(e) => Err(format!("webhook {url}: {e}")),
                }
            }
        };
        if let Err(e) = result {
            tracing::warn!(request_id = row.request_id, error = %e, "async destination delivery failed");
        }
    }
}
