//! Tracing of invocations (issue 20, docs/api.md): with `fgs serve --otlp-endpoint`, each
//! invocation of a function whose tracing is on (`meta.tracing`, set by `PUT .../tracing`)
//! becomes a server span named after the function, with OpenTelemetry's FaaS attributes and
//! child spans for the cold start and the run. A W3C `traceparent` the caller sent makes the
//! span its child. Spans go to OpenTelemetry's batch processor, which exports them over
//! OTLP/HTTP (protobuf) from its own thread, off the invocation path.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use fgs_instance::{ExtensionSpan, ExtensionTimings, InitializerRun};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Span, SpanId, SpanKind, Status, TraceContextExt, TraceId, Tracer as _, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

/// How long fgs's shutdown waits for the last spans to reach the collector.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("setting up the OTLP exporter for {endpoint}")]
pub struct TraceSetupError {
    endpoint: String,
    #[source]
    source: opentelemetry_otlp::ExporterBuildError,
}

/// Exports the spans of traced invocations; dropping it flushes what is batched.
pub struct Tracer {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracer")
    }
}

/// The URL spans are posted to: OTLP/HTTP's `/v1/traces` under the collector's base URL, as
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is read.
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Where a traced invocation's span sits, chosen before it runs so that the function can be
/// handed a `traceparent` naming it.
#[derive(Debug)]
pub struct Planned {
    parent: Context,
    trace_id: TraceId,
    span_id: SpanId,
}

impl Planned {
    /// The W3C `traceparent` of the invocation's span (sampled), for the function.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// The caller's `traceparent` as the function gets it when fgs does not trace the invocation:
/// passed on as it came (rewritten from its parsed form), and dropped if malformed.
pub fn pass_through(traceparent: Option<&str>) -> Option<String> {
    let cx = parent_context(traceparent);
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// One finished invocation as a span sees it.
#[derive(Debug)]
pub struct Traced<'a> {
    /// The span's name: the function's name.
    pub name: &'a str,
    pub urn: &'a str,
    pub version: &'a str,
    pub request_id: &'a str,
    pub planned: &'a Planned,
    pub started: SystemTime,
    /// When starting an instance began and ended, from the start, if this invocation started
    /// one.
    pub cold_start: Option<(Duration, Duration)>,
    /// When the function's initializer ran in that start, and whether it failed the start
    /// (with [`Traced::error`]).
    pub initializer: Option<(InitializerRun, bool)>,
    /// When the function ran, from the start; `None` when it never ran.
    pub run: Option<(Duration, Duration)>,
    pub total: Duration,
    /// The error code of a failed invocation (SPEC.md's `errorCode`).
    pub error: Option<(u32, &'a str)>,
}

impl Tracer {
    pub fn new(endpoint: &str) -> Result<Tracer, TraceSetupError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces_url(endpoint))
            .build()
            .map_err(|source| TraceSetupError {
                endpoint: endpoint.to_string(),
                source,
            })?;
        Ok(Tracer::with_provider(
            SdkTracerProvider::builder().with_batch_exporter(exporter),
        ))
    }

    pub(crate) fn with_provider(
        builder: opentelemetry_sdk::trace::TracerProviderBuilder,
    ) -> Tracer {
        let provider = builder
            .with_resource(Resource::builder().with_service_name("fgs").build())
            .build();
        let tracer = provider.tracer("fgs");
        Tracer { provider, tracer }
    }

    /// Places an invocation in the caller's trace (`traceparent`), or in a new one.
    pub fn plan(&self, traceparent: Option<&str>) -> Planned {
        let parent = parent_context(traceparent);
        let ids = RandomIdGenerator::default();
        let sc = parent.span().span_context().clone();
        let trace_id = if sc.is_valid() {
            sc.trace_id()
        } else {
            ids.new_trace_id()
        };
        Planned {
            parent,
            trace_id,
            span_id: ids.new_span_id(),
        }
    }

    /// Records the spans of one invocation; the batch processor exports them later. The
    /// extensions' deliveries end after the invocation: their spans are added when they do.
    pub fn record(&self, f: &Traced<'_>, extensions: Option<ExtensionTimings>) {
        let parent = &f.planned.parent;
        let mut attrs = vec![
            KeyValue::new("faas.invocation_id", f.request_id.to_string()),
            KeyValue::new("faas.name", f.name.to_string()),
            KeyValue::new("faas.version", f.version.to_string()),
            KeyValue::new("faas.coldstart", f.cold_start.is_some()),
            KeyValue::new("cloud.resource_id", f.urn.to_string()),
            KeyValue::new(
                "fgs.outcome",
                if f.error.is_some() {
                    "error"
                } else {
                    "success"
                },
            ),
        ];
        if let Some((code, _)) = f.error {
            attrs.push(KeyValue::new("error.type", i64::from(code).to_string()));
        }
        let span = self
            .tracer
            .span_builder(f.name.to_string())
            .with_kind(SpanKind::Server)
            .with_trace_id(f.planned.trace_id)
            .with_span_id(f.planned.span_id)
            .with_start_time(f.started)
            .with_attributes(attrs)
            .start_with_context(&self.tracer, parent);
        let cx = parent.with_span(span);
        if let Some((from, to)) = f.cold_start {
            let start_cx = self.child(&cx, "cold start", f.started, from, to);
            if let Some((run, failed)) = f.initializer {
                let error = if failed { f.error } else { None };
                self.initializer(&start_cx, run, error);
            }
        }
        if let Some((from, to)) = f.run {
            self.child(&cx, "run", f.started, from, to);
        }
        let span = cx.span();
        if let Some((_, message)) = f.error {
            span.set_status(Status::error(message.to_string()));
        }
        span.end_with_timestamp(f.started + f.total);
        if let Some(ext) = extensions {
            let tracer = self.tracer.clone();
            tokio::spawn(async move { extension_spans(&tracer, &cx, &ext.wait().await) });
        }
    }

    /// A child span of `cx` from `from` to `to` after `t0`; its context, for its own children.
    fn child(
        &self,
        cx: &Context,
        name: &'static str,
        t0: SystemTime,
        from: Duration,
        to: Duration,
    ) -> Context {
        let mut s = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(t0 + from)
            .start_with_context(&self.tracer, cx);
        s.end_with_timestamp(t0 + to);
        cx.with_span(s)
    }

    /// The `initializer` span, inside the `cold start` one; an error one for an initializer
    /// that failed the start (4201, 4211).
    fn initializer(&self, cx: &Context, run: InitializerRun, error: Option<(u32, &str)>) {
        let mut attrs = vec![KeyValue::new(
            "fgs.outcome",
            if error.is_some() { "error" } else { "success" },
        )];
        if let Some((code, _)) = error {
            attrs.push(KeyValue::new("error.type", i64::from(code).to_string()));
        }
        let mut s = self
            .tracer
            .span_builder("initializer")
            .with_kind(SpanKind::Internal)
            .with_start_time(run.start)
            .with_attributes(attrs)
            .start_with_context(&self.tracer, cx);
        if let Some((_, message)) = error {
            s.set_status(Status::error(message.to_string()));
        }
        s.end_with_timestamp(run.end);
    }
}

impl Tracer {
    /// Exports what is batched and stops exporting, waiting at most `limit` (fgs's shutdown).
    /// The exporter's HTTP client blocks, so the wait runs on a blocking thread.
    pub async fn shutdown(&self, limit: Duration) {
        let provider = self.provider.clone();
        let _ = tokio::task::spawn_blocking(move || shut(&provider, limit)).await;
    }
}

fn shut(provider: &SdkTracerProvider, limit: Duration) {
    match provider.shutdown_with_timeout(limit) {
        Ok(()) | Err(OTelSdkError::AlreadyShutdown) => {}
        Err(e) => tracing::warn!(error = %e, "flushing the last spans failed"),
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        // A tracer dropped without [`Tracer::shutdown`] still sends what it batched.
        shut(&self.provider, SHUTDOWN_WAIT);
    }
}

/// A child span of the invocation per extension's delivery of its event, named after the
/// extension: from fgs's `POST /extension/invoke` to the extension's answer.
fn extension_spans(tracer: &SdkTracer, cx: &Context, deliveries: &[ExtensionSpan]) {
    for d in deliveries {
        let mut span = tracer
            .span_builder(d.name.clone())
            .with_kind(SpanKind::Client)
            .with_start_time(d.start)
            .with_attributes([
                KeyValue::new("fgs.extension.name", d.name.clone()),
                KeyValue::new(
                    "fgs.outcome",
                    if d.error.is_some() {
                        "error"
                    } else {
                        "success"
                    },
                ),
            ])
            .start_with_context(tracer, cx);
        if let Some(why) = &d.error {
            span.set_status(Status::error(why.clone()));
        }
        span.end_with_timestamp(d.end);
    }
}

/// The remote parent a W3C `traceparent` names; an absent or malformed one starts a new trace.
fn parent_context(traceparent: Option<&str>) -> Context {
    let Some(tp) = traceparent else {
        return Context::new();
    };
    let carrier = HashMap::from([("traceparent".to_string(), tp.to_string())]);
    TraceContextPropagator::new().extract_with_context(&Context::new(), &carrier)
}

#[cfg(test)]
pub(crate) mod tests;
