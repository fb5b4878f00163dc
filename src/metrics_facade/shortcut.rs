//! A kept handle's way around the `tracing` event, straight to its series, where the
//! event would do nothing else.
//!
//! An update through the facade is a track call: a `tracing` event that the telemetry
//! layer turns into a record for every destination. In the subscriber that `try_init`
//! installs, when every destination is the aggregation or reads it (Prometheus, OTLP)
//! and has started, that record's only effect is one update of one series. So once an
//! update of a handle has gone through the event (and made the series), the handle
//! keeps the series and updates it itself, for as long as:
//!
//! * the current dispatcher is that same subscriber (not a scoped one, not another
//!   instance): a type test of its telemetry layer and a pointer compare (the layer's
//!   sink says whether its subscriber is one where track calls reach that layer
//!   alone);
//! * telemetry is on there (the runtime toggle);
//! * the series is the name's own (not the overflow series past the label-set limit)
//!   and takes no span fields as labels (both known when the handle learns it).
//!
//! Otherwise the update is the event, as before. One difference remains, with
//! `tracing`'s `log-always` feature (every event also a `log` record): an update the
//! handle makes directly is no `tracing` event, so it is no `log` record either.
//!
//! The shortcut's update is a plain load and store to the calling thread's own cells
//! of the series (the ones its records update, found once per thread after a first
//! record there), so threads updating one counter share no cache line; the event's is
//! a dispatch, a visit of the fields and a lookup of the series by name and labels.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use metrics::Key;
use smallvec::SmallVec;
use tracing_core::dispatcher::WeakDispatch;
use tracing_core::Dispatch;

use crate::aggregate::SeriesHandle;
use crate::export::ExporterSink;
use crate::fields::Kind;
use crate::layer::{TelemetryHandle, TelemetryLayer};
use crate::record::{Record, Tag};

/// The subscribers a handle remembers its series in: an app has one; a test or a
/// benchmark may have a few, one per scoped dispatcher. Past that, updates in
/// further subscribers stay events.
const SUBSCRIBERS: usize = 4;

/// What a handle learned in one subscriber.
struct Learned {
    /// The subscriber, weakly: its memory stays allocated, so that its telemetry
    /// layer's address stays its own, but the subscriber is dropped as it would be
    /// without the handle (its layers' `Drop` runs).
    _dispatch: WeakDispatch,
    /// Where that layer is, to tell it from another instance of its type.
    at: usize,
    /// The series and the switch; `None` where an update must stay an event (a
    /// destination that takes the records, the overflow series, span-field labels).
    direct: Option<(SeriesHandle, TelemetryHandle)>,
}

/// A handle's series, per subscriber it has updated in.
#[derive(Default)]
pub(super) struct Shortcut {
    learned: [OnceLock<Learned>; SUBSCRIBERS],
    /// The slot last learned or used: the one to try first.
    last: AtomicUsize,
}

impl Shortcut {
    /// Adds `value` to the series straight, if the event would do only that; `false`
    /// if the update must be the event.
    #[inline]
    pub(super) fn add(&self, value: f64) -> bool {
        let slot = self.last.load(Ordering::Relaxed) % SUBSCRIBERS;
        let Some(Learned {
            at,
            direct: Some((series, switch)),
            ..
        }) = self.learned[slot].get()
        else {
            return false;
        };
        if !switch.is_enabled() || tracing::dispatcher::get_default(layer_at) != Some(*at) {
            return false;
        }
        series.add(value)
    }

    /// After an update of `key` went through the event: learns, once per subscriber,
    /// whether and where the next ones may go straight.
    #[cold]
    pub(super) fn learn(&self, key: &Key) {
        tracing::dispatcher::get_default(|dispatch| {
            let Some(at) = layer_at(dispatch) else {
                return;
            };
            for (i, slot) in self.learned.iter().enumerate() {
                match slot.get() {
                    Some(learned) if learned.at == at => {
                        self.last.store(i, Ordering::Relaxed);
                        // The first update on this thread: its cells of the series.
                        if let Some((series, switch)) = &learned.direct {
                            if switch.is_enabled() {
                                with_record(key, |record| series.learn_thread(record));
                            }
                        }
                        return;
                    }
                    Some(_) => continue,
                    None => {
                        let Some(direct) = direct(dispatch, key) else {
                            // Off: the event did nothing, so there is nothing to learn
                            // from yet.
                            return;
                        };
                        let learned = Learned {
                            _dispatch: dispatch.downgrade(),
                            at,
                            direct,
                        };
                        if slot.set(learned).is_ok() {
                            self.last.store(i, Ordering::Relaxed);
                        }
                        return;
                    }
                }
            }
        });
    }
}

/// Where the telemetry layer of `dispatch` is, if it has the one `try_init` builds.
#[inline]
fn layer_at(dispatch: &Dispatch) -> Option<usize> {
    dispatch
        .downcast_ref::<TelemetryLayer<Arc<ExporterSink>>>()
        .map(|layer| layer as *const TelemetryLayer<Arc<ExporterSink>> as usize)
}

/// What an update of `key` in `dispatch` may go straight to: `None` while telemetry
/// is off there (nothing to learn yet), `Some(None)` where it must stay an event
/// (another layer may see the event, or a destination takes the records).
fn direct(dispatch: &Dispatch, key: &Key) -> Option<Option<(SeriesHandle, TelemetryHandle)>> {
    let sink = dispatch
        .downcast_ref::<TelemetryLayer<Arc<ExporterSink>>>()?
        .sink();
    let switch = sink.switch()?;
    if !switch.is_enabled() {
        return None;
    }
    let Some(aggregator) = sink.aggregation_only().filter(|_| sink.is_alone()) else {
        return Some(None);
    };
    Some(with_record(key, |record| {
        let series = aggregator.series_handle(record)?;
        series.learn_thread(record);
        Some((series, switch.clone()))
    }))
}

/// The record an update of `key` makes (without its value), for `f`.
fn with_record<T>(key: &Key, f: impl FnOnce(&Record<'_>) -> T) -> T {
    let tags: SmallVec<[Tag<'_>; 8]> = key.labels().map(|l| Tag::new(l.key(), l.value())).collect();
    f(&Record::new(Kind::Metric, key.name(), &tags))
}

#[cfg(all(test, feature = "prometheus"))]
mod tests {
    use std::net::SocketAddr;

    use metrics::Label;
    use tracing::Dispatch;

    use super::super::Target;
    use crate::aggregate::{Aggregator, SeriesData};
    use crate::fields::Instrument;
    use crate::{Config, Destination, Guard, MemorySink, TelemetryLayer};

    const ANY_PORT: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

    /// The subscriber `try_init` installs, with `config`, as a dispatcher.
    fn app(config: Config) -> (Dispatch, Guard) {
        let (subscriber, guard) =
            crate::__private::app_subscriber(&config.with_enabled(true)).unwrap();
        (Dispatch::new(subscriber), guard)
    }

    /// A subscriber of an app's own: the registry and `layer`.
    fn with_layer(
        layer: impl tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync,
    ) -> Dispatch {
        use tracing_subscriber::layer::SubscriberExt;
        Dispatch::new(tracing_subscriber::registry().with(layer))
    }

    fn prometheus(aggregator: &Aggregator) -> Config {
        Config::new()
            .with_destinations([Destination::Prometheus(ANY_PORT)])
            .with_aggregator(aggregator.clone())
    }

    fn requests() -> Target {
        Target::new(metrics::Key::from_parts(
            "requests",
            vec![Label::new("route", "/a")],
        ))
    }

    fn total(aggregator: &Aggregator, name: &str) -> Vec<(Vec<(String, String)>, SeriesData)> {
        aggregator
            .snapshot()
            .into_iter()
            .filter(|s| s.name() == name)
            .map(|s| (s.labels().to_vec(), s.data().clone()))
            .collect()
    }

    fn route_a() -> Vec<(String, String)> {
        vec![("route".to_owned(), "/a".to_owned())]
    }

    #[test]
    fn after_one_event_a_kept_handle_updates_its_series_straight_and_counts_the_same() {
        let aggregator = Aggregator::new();
        let (dispatch, guard) = app(prometheus(&aggregator));
        let target = requests();
        tracing::dispatcher::with_default(&dispatch, || {
            assert!(!target.shortcut.add(1.0), "nothing learned yet");
            target.update(Instrument::Counter, 1.0);
            assert!(target.shortcut.add(2.0), "learned from the first update");
            target.update(Instrument::Counter, 4.0);
        });
        assert_eq!(
            total(&aggregator, "requests"),
            [(route_a(), SeriesData::Sum(7.0))]
        );

        // Off at run time: neither way counts; on again: straight again.
        tracing::dispatcher::with_default(&dispatch, || {
            guard.handle().disable();
            assert!(!target.shortcut.add(8.0));
            target.update(Instrument::Counter, 8.0);
            guard.handle().enable();
            target.update(Instrument::Counter, 16.0);
            assert!(target.shortcut.add(32.0));
        });
        assert_eq!(
            total(&aggregator, "requests"),
            [(route_a(), SeriesData::Sum(55.0))]
        );

        // Another subscriber (here a scoped one of the app's own) gets the event.
        let sink = MemorySink::new();
        let other = with_layer(TelemetryLayer::new(sink.clone()).with_telemetry_filter());
        tracing::dispatcher::with_default(&other, || {
            assert!(!target.shortcut.add(64.0), "not the subscriber it learned");
            target.update(Instrument::Counter, 64.0);
        });
        assert_eq!(sink.records().len(), 1);
        assert_eq!(sink.records()[0].value(), Some(64.0));
        assert_eq!(
            total(&aggregator, "requests"),
            [(route_a(), SeriesData::Sum(55.0))]
        );
        drop(guard);
    }

    #[test]
    fn each_thread_updates_its_own_cells_once_found_and_every_update_counts() {
        let aggregator = Aggregator::new();
        let (dispatch, guard) = app(prometheus(&aggregator));
        let target = requests();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    tracing::dispatcher::with_default(&dispatch, || {
                        assert!(!target.shortcut.add(1.0), "no cells of this thread yet");
                        for _ in 0..1_000 {
                            target.update(Instrument::Counter, 1.0);
                        }
                        assert!(target.shortcut.add(1.0), "this thread's cells, found");
                    })
                });
            }
        });
        assert_eq!(
            total(&aggregator, "requests"),
            [(route_a(), SeriesData::Sum(4_004.0))]
        );
        drop(guard);
    }

    #[test]
    fn a_handle_keeps_no_subscriber_alive() {
        // The subscriber `try_init` builds, where the handle goes straight, and one of
        // an app's own, where it does not.
        let aggregator = Aggregator::new();
        let (app, guard) = app(prometheus(&aggregator));
        let (layer, own_guard) =
            crate::layer_with(&prometheus(&Aggregator::new()).with_enabled(true)).unwrap();
        let own = with_layer(layer);
        let target = requests();
        for dispatch in [&app, &own] {
            tracing::dispatcher::with_default(dispatch, || {
                target.update(Instrument::Counter, 1.0);
                target.update(Instrument::Counter, 1.0);
            });
        }
        assert_eq!(
            total(&aggregator, "requests"),
            [(route_a(), SeriesData::Sum(2.0))]
        );
        let (app_weak, own_weak) = (app.downgrade(), own.downgrade());
        drop((app, own));
        assert!(
            app_weak.upgrade().is_none(),
            "the app's subscriber was dropped"
        );
        assert!(
            own_weak.upgrade().is_none(),
            "the other subscriber was dropped"
        );
        drop((guard, own_guard));
    }

    #[test]
    fn gauges_and_histograms_go_straight_as_their_events_would() {
        let aggregator = Aggregator::builder()
            .histogram("size", [10.0, 100.0])
            .build();
        let (dispatch, guard) = app(prometheus(&aggregator));
        let (gauge, histogram) = (
            Target::new(metrics::Key::from_name("level")),
            Target::new(metrics::Key::from_name("size")),
        );
        tracing::dispatcher::with_default(&dispatch, || {
            for value in [3.0, 5.0, 4.0] {
                gauge.update(Instrument::Gauge, value);
            }
            for value in [5.0, 50.0, 500.0, f64::NAN] {
                histogram.update(Instrument::Histogram, value);
            }
            assert!(gauge.shortcut.add(4.0) && histogram.shortcut.add(5.0));
        });
        assert_eq!(total(&aggregator, "level")[0].1, SeriesData::Gauge(4.0));
        let SeriesData::Histogram {
            bucket_counts, sum, ..
        } = &total(&aggregator, "size")[0].1
        else {
            panic!("not a histogram");
        };
        // NaN is in no bucket either way.
        assert_eq!((bucket_counts.as_slice(), *sum), (&[2, 1, 1][..], 560.0));
        drop(guard);
    }

    #[test]
    fn where_a_destination_takes_the_records_every_update_stays_an_event() {
        let dir = std::env::temp_dir().join(format!("telemetry-shortcut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.jsonl");
        let aggregator = Aggregator::new();
        let (dispatch, guard) =
            app(prometheus(&aggregator).with_destination(Destination::File(path.clone())));
        let target = requests();
        tracing::dispatcher::with_default(&dispatch, || {
            for _ in 0..3 {
                target.update(Instrument::Counter, 1.0);
                assert!(!target.shortcut.add(1.0));
            }
        });
        drop(guard);
        let lines = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            lines.lines().filter(|l| l.contains("\"requests\"")).count(),
            3,
            "{lines}"
        );
        assert_eq!(
            total(&aggregator, "requests"),
            [(route_a(), SeriesData::Sum(3.0))]
        );
    }

    #[test]
    fn span_field_labels_and_the_overflow_series_stay_events() {
        let aggregator = Aggregator::builder()
            .span_labels("requests")
            .max_series_per_name(2)
            .build();
        let (dispatch, guard) = app(prometheus(&aggregator).with_span_fields(["tenant"]));
        let (labelled, first, beyond) = (
            requests(),
            Target::new(metrics::Key::from_name("jobs")),
            Target::new(metrics::Key::from_parts(
                "jobs",
                vec![Label::new("queue", "c")],
            )),
        );
        let second = Target::new(metrics::Key::from_parts(
            "jobs",
            vec![Label::new("queue", "b")],
        ));
        tracing::dispatcher::with_default(&dispatch, || {
            // Outside a span, the name's series without the span field exists too.
            labelled.update(Instrument::Counter, 1.0);
            let _span = tracing::info_span!("request", tenant = "t1").entered();
            labelled.update(Instrument::Counter, 1.0);
            assert!(
                !labelled.shortcut.add(1.0),
                "span fields are labels of this name"
            );
            first.update(Instrument::Counter, 1.0);
            assert!(first.shortcut.add(1.0), "the name's own series");
            second.update(Instrument::Counter, 1.0);
            beyond.update(Instrument::Counter, 1.0);
            beyond.update(Instrument::Counter, 1.0);
            assert!(
                !beyond.shortcut.add(1.0),
                "past the limit: the overflow series"
            );
        });
        assert_eq!(
            total(&aggregator, "requests"),
            [
                (route_a(), SeriesData::Sum(1.0)),
                (
                    vec![
                        ("route".to_owned(), "/a".to_owned()),
                        ("tenant".to_owned(), "t1".to_owned())
                    ],
                    SeriesData::Sum(1.0)
                )
            ]
        );
        assert_eq!(
            aggregator.overflowed(),
            2,
            "each update past the limit is counted"
        );
        drop(guard);
    }
}
