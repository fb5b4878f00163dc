//! How the worker makes a batch: the destination encodes the records captured on the
//! emitting threads into one body, and what those threads encoded themselves is
//! either copied after it or, for a destination that [takes
//! parts](Deliver::takes_parts), delivered from where they wrote it.

use std::io::IoSlice;
use std::ops::Range;

use super::{Deliver, Delivery, Worker};
use crate::pipeline::clock::Converter;
use crate::pipeline::handoff::{Batching, Captured, Pending, Read, Taking};

/// A batch as the worker hands it to the destination.
#[derive(Clone, Copy)]
pub(super) enum Batch<'a> {
    /// One body, compressed as [`Deliver::seal`] said.
    Body { bytes: &'a [u8], compressed: bool },
    /// Parts, for [`Deliver::deliver_parts`].
    Parts(&'a [IoSlice<'a>]),
}

/// A part of a batch being encoded: a range of the worker's body, or records the
/// destination encoded on the emitting thread, where they lie.
enum Part<'a> {
    Body(Range<usize>),
    Encoded(&'a [u8]),
}

impl<D: Deliver> Worker<D> {
    /// Encodes the oldest batch into `body`: its records and the queue bytes they
    /// held, and whether the body is compressed; `None` if nothing was pending.
    pub(super) fn encode_batch(&mut self) -> Option<(u64, usize, bool)> {
        self.body.clear();
        let converter: Converter = self.calibration.converter();
        self.state.handoff.publish(&converter);
        self.destination.begin(converter.now_unix_nanos());
        let batch = self.state.policy.batch;
        let (destination, body) = (&mut self.destination, &mut self.body);
        let taking = self.pending.next_batch(batch.records, |entry| {
            match entry.read() {
                Some(Read::Record(record)) => encode(destination, record, &converter, body),
                Some(Read::Encoded(bytes)) => destination.encoded(bytes, body),
                None => {}
            }
            if body.len() >= batch.bytes {
                Batching::Full
            } else {
                Batching::More
            }
        });
        self.pending.recycle(&self.signals);
        let taking = taking?;
        let compressed = self.destination.seal(&mut self.body);
        Some((taking.records, taking.bytes, compressed))
    }

    /// Delivers the body [`encode_batch`](Self::encode_batch) made, `compressed` as
    /// it said, of `records` records (see [`deliver`](Self::deliver)).
    pub(super) fn deliver_body(&mut self, compressed: bool, records: u64) -> Option<Delivery> {
        let body = std::mem::take(&mut self.body);
        let outcome = self.deliver(
            Batch::Body {
                bytes: &body,
                compressed,
            },
            records,
        );
        self.body = body;
        outcome
    }

    /// Encodes the oldest batch into `body` and `parts`: the records the destination
    /// encoded on the emitting threads are not copied, but delivered from where they
    /// lie. Returns the batch's records and the queue bytes they held, and the
    /// delivery's outcome; `None` if nothing was pending.
    pub(super) fn send_parts(&mut self) -> Option<(Taking, Option<Delivery>)> {
        let converter: Converter = self.calibration.converter();
        self.state.handoff.publish(&converter);
        self.destination.begin(converter.now_unix_nanos());
        let batch = self.state.policy.batch;
        // Out of `self` while its entries are borrowed, so that delivery (which
        // takes messages while it waits to try again) can borrow the worker.
        let mut pending = std::mem::replace(&mut self.pending, Pending::new());
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let mut parts: Vec<Part<'_>> = Vec::new();
        let (mut size, mut from) = (0, 0);
        let destination = &mut self.destination;
        let taking = pending.next_batch(batch.records, |entry| {
            match entry.read() {
                Some(Read::Record(record)) => {
                    let before = body.len();
                    encode(destination, record, &converter, &mut body);
                    size += body.len() - before;
                }
                Some(Read::Encoded(bytes)) => {
                    if body.len() > from {
                        parts.push(Part::Body(from..body.len()));
                        from = body.len();
                    }
                    parts.push(Part::Encoded(bytes));
                    size += bytes.len();
                }
                None => {}
            }
            if size >= batch.bytes {
                Batching::Full
            } else {
                Batching::More
            }
        });
        let sent = taking.map(|taking| {
            if body.len() > from {
                parts.push(Part::Body(from..body.len()));
            }
            let slices: Vec<IoSlice<'_>> = parts
                .iter()
                .map(|part| match part {
                    Part::Body(range) => IoSlice::new(&body[range.clone()]),
                    Part::Encoded(bytes) => IoSlice::new(bytes),
                })
                .collect();
            (taking, self.deliver(Batch::Parts(&slices), taking.records))
        });
        drop(parts);
        pending.recycle(&self.signals);
        self.pending = pending;
        self.body = body;
        sent
    }
}

/// Has `destination` encode `record` into `body`, its time converted from the counter
/// first if need be.
fn encode<D: Deliver>(
    destination: &mut D,
    mut record: Captured<'_>,
    converter: &Converter,
    body: &mut Vec<u8>,
) {
    if record.time_in_ticks {
        record.time_unix_nano = converter.unix_nanos(record.time_unix_nano);
        record.time_in_ticks = false;
    }
    destination.encode(&record, body);
}
