//! Span profiles: CPU (and clock) samples taken while a `tracing` span is entered carry
//! `span_id` and `span_name` labels, so that Pyroscope can answer "the profile of this
//! span" and Grafana's trace-to-profile link finds it.
//!
//! Only root spans (those without a parent) label samples by default, as pyroscope-go's
//! OpenTelemetry integration does: a span name per endpoint keeps Pyroscope's series few,
//! and a root's id covers every child's samples. `span_id` is the 16-hex-digit id
//! Pyroscope parses (Pyroscope keeps it inside the profile rather than as a series
//! label). With the `push-otel` feature and `tracing-opentelemetry` (0.34) in the same
//! subscriber, it is the span's OpenTelemetry span id — the id Tempo shows, which
//! Grafana's "traces to profiles" link asks Pyroscope for. Otherwise a fresh random id
//! per span (tracing's own ids are reused once a span closes). Inside the span,
//! [`crate::labels::current`] shows it.

use std::cell::RefCell;

use tracing_core::span::{Attributes, Id};
use tracing_core::{Subscriber, span};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::labels;

/// The `tracing_subscriber` layer that labels samples with the entered root span.
///
/// ```no_run
/// use tracing_subscriber::layer::SubscriberExt;
/// let subscriber = tracing_subscriber::registry().with(profile::push::SpanLayer::new());
/// tracing::subscriber::set_global_default(subscriber).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct SpanLayer {
    every_span: bool,
    /// The subscriber this layer is in (to ask tracing-opentelemetry for span ids).
    #[cfg(feature = "push-otel")]
    dispatch: std::sync::OnceLock<tracing_core::dispatcher::WeakDispatch>,
}

impl SpanLayer {
    /// Root spans label samples (the default).
    pub fn new() -> SpanLayer {
        SpanLayer::default()
    }

    /// Every span labels the samples taken inside it with its own id and name (more
    /// series in Pyroscope: one `span_name` value per span name).
    pub fn every_span(mut self) -> SpanLayer {
        self.every_span = true;
        self
    }
}

/// A labelled span's labels, kept in its extensions; `resolved` once the span id is the
/// OpenTelemetry one (or known not to be).
struct SpanLabels(Vec<(String, String)>, bool);

thread_local! {
    /// The labels published by enters on this thread, innermost last, with their span.
    static ENTERED: RefCell<Vec<(Id, labels::Entered)>> = const { RefCell::new(Vec::new()) };
}

/// A random nonzero 64-bit id (splitmix64 of a counter seeded from the clock and pid).
fn fresh_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut z = NEXT.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    if z == 0 {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()) << 40;
        let _ = NEXT.compare_exchange(
            0x9e37_79b9_7f4a_7c15,
            seed | 1,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        z = seed;
    }
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).max(1)
}

/// The span id as Pyroscope reads it: 16 hex digits.
pub(crate) fn span_id_label(id: u64) -> String {
    format!("{id:016x}")
}

impl<S> tracing_subscriber::Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let root = span.parent().is_none();
        if !(root || self.every_span) {
            return;
        }
        let _ = attrs;
        span.extensions_mut().insert(SpanLabels(
            vec![
                ("span_id".into(), span_id_label(fresh_id())),
                ("span_name".into(), span.name().into()),
            ],
            !cfg!(feature = "push-otel"),
        ));
    }

    #[cfg(feature = "push-otel")]
    fn on_register_dispatch(&self, subscriber: &tracing_core::Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        #[cfg(feature = "push-otel")]
        self.resolve_otel_id(&span, id);
        let ext = span.extensions();
        let Some(own) = ext.get::<SpanLabels>() else {
            return;
        };
        let entered = labels::enter(&own.0);
        ENTERED.with(|e| e.borrow_mut().push((id.clone(), entered)));
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        ENTERED.with(|e| {
            let mut e = e.borrow_mut();
            // Enters and exits nest on a thread; an exit of a span we did not label finds
            // nothing (it is not ours).
            if e.last().is_some_and(|(top, _)| top == id)
                && let Some((_, entered)) = e.pop()
            {
                labels::leave(entered);
            }
        });
    }

    fn on_close(&self, _id: span::Id, _ctx: Context<'_, S>) {}
}

#[cfg(feature = "push-otel")]
impl SpanLayer {
    /// On a labelled span's first enter (every layer has seen it by then), its
    /// OpenTelemetry span id replaces the fresh one, if tracing-opentelemetry tracks it.
    fn resolve_otel_id<'a, S: Subscriber + LookupSpan<'a>>(
        &self,
        span: &tracing_subscriber::registry::SpanRef<'a, S>,
        id: &Id,
    ) {
        use opentelemetry::trace::TraceContextExt as _;
        let pending = span.extensions().get::<SpanLabels>().is_some_and(|l| !l.1);
        if !pending {
            return;
        }
        // Not while holding the extensions: tracing-opentelemetry locks them.
        let otel = self
            .dispatch
            .get()
            .and_then(|d| d.upgrade())
            .and_then(|d| tracing_opentelemetry::get_otel_context(id, &d))
            .map(|cx| cx.span().span_context().span_id())
            .filter(|s| *s != opentelemetry::trace::SpanId::INVALID);
        let mut ext = span.extensions_mut();
        if let Some(labels) = ext.get_mut::<SpanLabels>() {
            if let Some(otel) = otel {
                labels.0[0].1 = otel.to_string();
            }
            labels.1 = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn root_spans_label_the_thread_while_entered_and_children_keep_the_root() {
        let subscriber = tracing_subscriber::registry().with(SpanLayer::new());
        tracing::subscriber::with_default(subscriber, || {
            assert!(labels::current().is_empty());
            let root = tracing::info_span!("checkout");
            root.in_scope(|| {
                let at_root = labels::current();
                assert_eq!(at_root[0].0, "span_id");
                assert_eq!(at_root[0].1.len(), 16);
                assert_eq!(
                    at_root[1],
                    ("span_name".to_string(), "checkout".to_string())
                );
                let child = tracing::info_span!("db");
                child.in_scope(|| assert_eq!(labels::current(), at_root));
                labels::with(&[("user", "a")], || {
                    assert_eq!(labels::current().len(), 3);
                });
            });
            assert!(labels::current().is_empty());
        });
    }

    #[cfg(feature = "push-otel")]
    #[test]
    fn with_tracing_opentelemetry_the_span_id_is_the_traces() {
        use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(SpanLayer::new())
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let root = tracing::info_span!("checkout");
            root.in_scope(|| {
                let otel = tracing::Span::current()
                    .context()
                    .span()
                    .span_context()
                    .span_id();
                assert_ne!(otel, opentelemetry::trace::SpanId::INVALID);
                let now = labels::current();
                assert_eq!(now[0], ("span_id".to_string(), otel.to_string()));
                assert_eq!(now[0].1.len(), 16);
            });
        });
    }

    #[test]
    fn fresh_ids_differ() {
        let ids: std::collections::HashSet<u64> = (0..1000).map(|_| fresh_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&0));
    }

    #[test]
    fn every_span_labels_children_with_their_own_id() {
        let subscriber = tracing_subscriber::registry().with(SpanLayer::new().every_span());
        tracing::subscriber::with_default(subscriber, || {
            let root = tracing::info_span!("outer");
            root.in_scope(|| {
                let child = tracing::info_span!("inner");
                child.in_scope(|| {
                    let now = labels::current();
                    assert_eq!(now[1], ("span_name".to_string(), "inner".to_string()));
                });
                assert_eq!(labels::current()[1].1, "outer");
            });
        });
    }
}
