//! OpenTelemetry export (cargo feature `otlp`, off by default): each HTTP
//! request becomes a span (route template, method, status, client id),
//! exported over OTLP/HTTP with protobuf to `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) by a batch processor on its
//! own thread. The standard `OTEL_*` variables apply (service name, headers,
//! timeout, batch sizes). Nothing is exported, and no span is made, unless
//! the feature is built and an endpoint is set.

use std::sync::atomic::{AtomicBool, Ordering};

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether request spans are exported (so worth making).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

#[cfg(feature = "otlp")]
mod enabled {
    use opentelemetry::trace::TracerProvider as _;

    /// Flushes and stops the exporter when dropped (after the runtime).
    pub struct Guard(opentelemetry_sdk::trace::SdkTracerProvider);

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Err(error) = self.0.shutdown() {
                eprintln!("OpenTelemetry: flushing spans at exit failed: {error}");
            }
        }
    }

    /// The tracing layer that exports spans, when an endpoint is set. Call
    /// outside the async runtime (the exporter's HTTP client is blocking).
    pub fn layer<S>() -> anyhow::Result<
        Option<(
            tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
            Guard,
        )>,
    >
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            return Ok(None);
        }
        use anyhow::Context as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .context("OpenTelemetry: cannot build the OTLP exporter")?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if !set("OTEL_SERVICE_NAME") {
            resource = resource.with_service_name("tessera");
        }
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("tessera");
        super::EXPORTING.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(Some((
            tracing_opentelemetry::layer().with_tracer(tracer),
            Guard(provider),
        )))
    }
}

#[cfg(feature = "otlp")]
pub use enabled::{Guard, layer};

/// Without the feature: nothing to flush.
#[cfg(not(feature = "otlp"))]
pub struct Guard;

/// Without the feature there is never a layer; an endpoint set anyway is
/// reported, so nobody waits for spans that cannot come.
#[cfg(not(feature = "otlp"))]
pub fn layer() -> anyhow::Result<Option<(tracing_subscriber::layer::Identity, Guard)>> {
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some_and(|v| !v.is_empty()) {
        eprintln!(
            "note: OTEL_EXPORTER_OTLP_ENDPOINT is set but this tessera was built without the `otlp` feature: no spans are exported"
        );
    }
    Ok(None)
}
