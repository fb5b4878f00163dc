//! The hand-off through its own API: what goes in on the emitting threads comes out
//! whole on the worker, once, in each thread's order. These also run under Miri
//! (`.ci/run`), which checks the lanes' unsafe code and the call-site addresses read
//! back as references.

use super::capture::call;
use super::*;
use crate::fields::Kind;
use crate::record::{Callsite, Tag};

/// Fewer records under Miri, which runs them some thousand times slower.
const MANY: u32 = if cfg!(miri) { 40 } else { 20_000 };

fn handoff(capacity: usize) -> (Handoff, Signals) {
    Handoff::with_clock(capacity, Clock::System)
}

/// A record read back: its name, value and tags (as text).
type Read = (String, Option<f64>, Vec<(String, String)>);

/// Every pending record, read back.
fn drain(pending: &mut Pending, signals: &Signals) -> Vec<Read> {
    let mut out = Vec::new();
    while pending
        .next_batch(7, |entry| {
            let c = entry.record().expect("a pushed record reads back");
            out.push((
                c.name.to_owned(),
                c.value,
                c.tags
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_string()))
                    .collect(),
            ));
            Batching::More
        })
        .is_some()
    {
        pending.recycle(signals);
    }
    out
}

/// Three threads push `MANY` records each (`push(handoff, thread, i)`), while this
/// one collects them and has `read` take what is pending, until all are in; returns
/// how many were collected.
fn from_three_threads(
    handoff: &Handoff,
    push: fn(&Handoff, u32, u32),
    mut read: impl FnMut(&mut Pending),
) -> u64 {
    let mut pending = Pending::new();
    let mut taken = 0;
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..3_u32)
            .map(|t| s.spawn(move || (0..MANY).for_each(|i| push(handoff, t, i))))
            .collect();
        while writers.iter().any(|w| !w.is_finished()) {
            taken += handoff.collect(&mut pending);
            read(&mut pending);
        }
    });
    taken += handoff.collect(&mut pending);
    read(&mut pending);
    taken
}

#[test]
fn every_thread_s_records_come_back_whole_once_and_in_its_order() {
    let (handoff, signals) = handoff(1 << 30);
    let mut seen = Vec::new();
    let taken = from_three_threads(
        &handoff,
        |handoff, t, i| {
            let name = format!("t{t}");
            let tags = [Tag::new("i", u64::from(i)), Tag::new("who", name.as_str())];
            let record = Record::new(Kind::Metric, &name, &tags).with_value(f64::from(i));
            assert_eq!(handoff.push(&record), Pushed::Queued);
        },
        |pending| seen.extend(drain(pending, &signals)),
    );
    assert_eq!(taken, u64::from(3 * MANY));
    let mut next = [0_u32; 3];
    for (name, value, tags) in seen {
        let t: usize = name[1..].parse().unwrap();
        let i = next[t];
        assert_eq!(value, Some(f64::from(i)), "{name}");
        assert_eq!(
            tags,
            [
                ("i".to_owned(), i.to_string()),
                ("who".to_owned(), name.clone())
            ]
        );
        next[t] += 1;
    }
    assert_eq!(next, [MANY; 3]);
}

#[test]
fn encoded_records_come_back_as_runs_in_their_thread_s_order_with_its_captured_ones() {
    let (handoff, signals) = handoff(1 << 30);
    let (mut names, mut given) = (Vec::new(), 0);
    let push = |handoff: &Handoff, t: u32, i: u32| {
        let name = format!("t{t}-{i}");
        // Runs of each kind, as a destination switches while behind.
        let pushed = match (i / 7) % 3 {
            0 => handoff.push(&Record::new(Kind::Event, &name, &[])),
            1 => handoff.push_encoded(format!("{name}\n").as_bytes()),
            _ => handoff
                .push_encoded_in_place(|out| {
                    let line = format!("{name}\n");
                    out.get_mut(..line.len())?.copy_from_slice(line.as_bytes());
                    Some(line.len())
                })
                .expect("a short line fits"),
        };
        assert_eq!(pushed, Pushed::Queued);
    };
    let read = |pending: &mut Pending| {
        while let Some(taking) = pending.next_batch(5, |entry| {
            match entry.read().expect("an entry reads back") {
                super::Read::Record(c) => names.push((false, c.name.to_owned())),
                super::Read::Encoded(bytes) => {
                    let text = std::str::from_utf8(bytes).unwrap();
                    assert!(text.ends_with('\n'), "whole lines only");
                    names.extend(text.lines().map(|l| (true, l.to_owned())));
                }
            }
            Batching::More
        }) {
            given += taking.records;
            pending.recycle(&signals);
        }
    };
    let taken = from_three_threads(&handoff, push, read);
    assert_eq!((taken, given), (u64::from(3 * MANY), u64::from(3 * MANY)));
    let mut next = [0_u32; 3];
    for (encoded, name) in names {
        let (t, i) = name[1..].split_once('-').unwrap();
        let (t, i): (usize, u32) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[t], "thread {t}'s records in order, each once");
        assert_eq!(encoded, (i / 7) % 3 != 0, "{name} comes back as it went in");
        next[t] += 1;
    }
    assert_eq!(next, [MANY; 3]);
}

#[test]
fn empty_encoded_records_are_given_out_and_counted() {
    let (handoff, signals) = handoff(1 << 20);
    for _ in 0..3 {
        assert_eq!(handoff.push_encoded(b""), Pushed::Queued);
    }
    let mut pending = Pending::new();
    assert_eq!(handoff.collect(&mut pending), 3);
    assert!(!pending.is_empty());
    let taking = pending.next_batch(usize::MAX, |_| Batching::More);
    assert_eq!(taking.map(|t| t.records), Some(3));
    pending.recycle(&signals);
    assert!(pending.is_empty());
}

#[test]
#[cfg_attr(miri, ignore = "reads the processor's time-stamp counter")]
fn the_time_for_a_line_encoded_here_is_the_wall_clock_s() {
    if Clock::detect() != Clock::Counter {
        eprintln!("SKIPPED: this machine's clock source is not an invariant TSC");
        return;
    }
    let (handoff, _signals) = Handoff::with_clock(1 << 20, Clock::Counter);
    let mut calibration = crate::pipeline::clock::Calibration::new();
    std::thread::sleep(crate::pipeline::clock::SETTLED);
    handoff.publish(&calibration.converter());
    for _ in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (before, now, after) = (
            std::time::SystemTime::now(),
            handoff.now().system_time(),
            std::time::SystemTime::now(),
        );
        let slack = std::time::Duration::from_micros(100);
        assert!(
            now + slack >= before && now <= after + slack,
            "{now:?} is not between {before:?} and {after:?}"
        );
    }
}

#[test]
fn a_call_site_s_address_reads_back_as_its_metadata() {
    let callsite = tracing::callsite! {
        name: "track",
        kind: tracing::metadata::Kind::EVENT,
        fields: telemetry.name
    };
    let meta = tracing_core::Callsite::metadata(callsite);
    let caller = std::panic::Location::caller();
    let (handoff, _signals) = handoff(1 << 20);
    let tags = [Tag::new("plan", "pro")];
    handoff.push(&call(Kind::Event, "macro", &tags, Callsite::Event(meta)));
    handoff.push(&call(
        Kind::Event,
        "function",
        &[],
        Callsite::Caller(caller),
    ));
    let mut pending = Pending::new();
    assert_eq!(handoff.collect(&mut pending), 2);
    let mut sources = Vec::new();
    pending.next_batch(usize::MAX, |entry| {
        let c = entry.record().unwrap();
        let tags: Vec<String> = c.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let own = |s: Option<&str>| s.map(str::to_owned);
        sources.push((
            c.name.to_owned(),
            own(c.module_path),
            own(c.file),
            c.line,
            tags,
        ));
        Batching::More
    });
    let own = |s: Option<&str>| s.map(str::to_owned);
    assert_eq!(
        sources,
        [
            (
                "macro".to_owned(),
                own(Some(module_path!())),
                own(Some(file!())),
                meta.line(),
                vec!["plan=pro".to_owned()]
            ),
            (
                "function".to_owned(),
                None,
                own(Some(file!())),
                Some(caller.line()),
                vec![]
            )
        ]
    );
}

#[test]
fn a_batch_ends_at_its_record_limit_or_when_the_destination_says_full() {
    let (handoff, _signals) = handoff(1 << 20);
    for i in 0..10_u32 {
        handoff.push(&Record::new(Kind::Metric, "m", &[]).with_value(f64::from(i)));
    }
    let mut pending = Pending::new();
    handoff.collect(&mut pending);
    let mut batch = Vec::new();
    let taking = pending
        .next_batch(4, |e| {
            batch.push(e.record().unwrap().value.unwrap());
            Batching::More
        })
        .unwrap();
    assert_eq!((taking.records, batch), (4, vec![0.0, 1.0, 2.0, 3.0]));
    let mut batch = Vec::new();
    let taking = pending
        .next_batch(100, |e| {
            batch.push(e.record().unwrap().value.unwrap());
            if batch.len() == 2 {
                Batching::Full
            } else {
                Batching::More
            }
        })
        .unwrap();
    assert_eq!((taking.records, batch), (2, vec![4.0, 5.0]));
    let left = pending.abandon();
    assert_eq!(pending.next_batch(1, |_| Batching::More), None, "given up");
    assert_eq!(left.records, 4);
    assert!(pending.is_empty());
    assert!(pending.next_batch(100, |_| Batching::More).is_none());
}

#[test]
fn a_timing_s_duration_and_a_metric_s_value_travel_an_event_has_none() {
    let (handoff, signals) = handoff(1 << 20);
    handoff.push(&Record::new(Kind::Timing, "t", &[]).with_value(12.5));
    handoff.push(&Record::new(Kind::Metric, "m", &[]).with_value(-1.0));
    handoff.push(&Record::new(Kind::Event, "e", &[]).with_value(3.0));
    let mut pending = Pending::new();
    handoff.collect(&mut pending);
    let read = drain(&mut pending, &signals);
    let values: Vec<_> = read
        .iter()
        .map(|(name, value, _)| (name.as_str(), *value))
        .collect();
    assert_eq!(values, [("t", Some(12.5)), ("m", Some(-1.0)), ("e", None)]);
}

#[test]
fn the_bound_refuses_what_would_pass_it_and_giving_up_makes_room() {
    let record = Record::new(Kind::Event, "e", &[]);
    let one = queued_len(&record);
    let (handoff, _signals) = handoff(3 * one);
    let pushed: Vec<_> = (0..4).map(|_| handoff.push(&record)).collect();
    assert_eq!(
        pushed,
        [Pushed::Queued, Pushed::Queued, Pushed::Queued, Pushed::Full]
    );
    assert_eq!(
        handoff.push_past_bound(&record),
        Pushed::Queued,
        "the record an emitter waited for passes the bound"
    );
    let mut pending = Pending::new();
    assert_eq!(handoff.collect(&mut pending), 4);
    let gone = pending.abandon();
    assert_eq!((gone.records, gone.bytes), (4, 4 * one));
    handoff.release(gone.bytes);
    assert_eq!(handoff.push(&record), Pushed::Queued, "room again");
}

#[test]
fn a_metric_s_declaration_travels_with_it() {
    let (handoff, _signals) = handoff(1 << 20);
    let counter = Record::new(Kind::Metric, "net.received", &[])
        .with_value(1024.0)
        .with_instrument(crate::Instrument::Counter)
        .with_unit("By")
        .with_description("bytes read from peers");
    handoff.push(&counter);
    handoff.push(&Record::new(Kind::Metric, "plain", &[]).with_value(1.0));
    let mut pending = Pending::new();
    handoff.collect(&mut pending);
    let mut metas = Vec::new();
    pending.next_batch(usize::MAX, |entry| {
        let c = entry.record().unwrap();
        metas.push((c.meta.instrument, c.meta.unit, c.meta.description));
        Batching::More
    });
    assert_eq!(
        metas,
        [
            (
                Some(crate::Instrument::Counter),
                Some("By"),
                Some("bytes read from peers")
            ),
            (None, None, None)
        ]
    );
}
