//! Metrics defined by the guest. Like Envoy's stats they are process-wide: the
//! same name defined from several VMs is one metric.

use crate::abi::Status;
use std::collections::HashMap;

const KIND_MASK: u32 = 0x3;

/// A metric's current value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricValue {
    /// A monotonically increasing counter.
    Counter(u64),
    /// A gauge (Envoy's are unsigned; negative values show arithmetic gone below zero).
    Gauge(i64),
    /// Every recorded sample, in order.
    Histogram(Vec<u64>),
}

/// A snapshot of one metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    /// The name the guest defined.
    pub name: String,
    /// The value.
    pub value: MetricValue,
}

#[derive(Default)]
pub(crate) struct Metrics {
    list: Vec<Metric>,
    by_key: HashMap<(u32, String), usize>,
}

impl Metrics {
    /// `proxy_define_metric`: ids encode the kind in the low two bits, like Envoy's.
    pub(crate) fn define(&mut self, kind: u32, name: String) -> Result<u32, Status> {
        let value = match kind {
            0 => MetricValue::Counter(0),
            1 => MetricValue::Gauge(0),
            2 => MetricValue::Histogram(Vec::new()),
            _ => return Err(Status::BadArgument),
        };
        let index = match self.by_key.get(&(kind, name.clone())) {
            Some(&index) => index,
            None => {
                self.list.push(Metric {
                    name: name.clone(),
                    value,
                });
                self.by_key.insert((kind, name), self.list.len() - 1);
                self.list.len() - 1
            }
        };
        let index = u32::try_from(index + 1).map_err(|_| Status::InternalFailure)?;
        Ok((index << 2) | kind)
    }

    fn lookup(&mut self, id: u32) -> Option<&mut MetricValue> {
        let index = usize::try_from(id >> 2).ok()?.checked_sub(1)?;
        let metric = self.list.get_mut(index)?;
        let kind = match metric.value {
            MetricValue::Counter(_) => 0,
            MetricValue::Gauge(_) => 1,
            MetricValue::Histogram(_) => 2,
        };
        (kind == id & KIND_MASK).then_some(&mut metric.value)
    }

    /// `proxy_increment_metric`: counters only go up, histograms cannot be incremented.
    pub(crate) fn increment(&mut self, id: u32, offset: i64) -> Status {
        if id & KIND_MASK > 1 {
            return Status::BadArgument;
        }
        match self.lookup(id) {
            None => Status::NotFound,
            Some(MetricValue::Counter(value)) => {
                if offset > 0 {
                    *value = value.saturating_add(offset.unsigned_abs());
                    Status::Ok
                } else {
                    Status::BadArgument
                }
            }
            Some(MetricValue::Gauge(value)) => {
                *value = value.saturating_add(offset);
                Status::Ok
            }
            Some(MetricValue::Histogram(_)) => Status::BadArgument,
        }
    }

    /// `proxy_record_metric`: counters add, gauges set, histograms sample.
    pub(crate) fn record(&mut self, id: u32, sample: u64) -> Status {
        match self.lookup(id) {
            None => Status::NotFound,
            Some(MetricValue::Counter(value)) => {
                *value = value.saturating_add(sample);
                Status::Ok
            }
            Some(MetricValue::Gauge(value)) => {
                *value = sample as i64;
                Status::Ok
            }
            Some(MetricValue::Histogram(samples)) => {
                samples.push(sample);
                Status::Ok
            }
        }
    }

    /// `proxy_get_metric`: counters and gauges only.
    pub(crate) fn get(&mut self, id: u32) -> Result<u64, Status> {
        if id & KIND_MASK > 1 {
            return Err(Status::BadArgument);
        }
        match self.lookup(id) {
            Some(MetricValue::Counter(value)) => Ok(*value),
            Some(MetricValue::Gauge(value)) => Ok(*value as u64),
            _ => Err(Status::NotFound),
        }
    }

    pub(crate) fn find(&self, name: &str, kind: u32) -> Option<&MetricValue> {
        self.by_key
            .get(&(kind, name.to_string()))
            .map(|&i| &self.list[i].value)
    }

    pub(crate) fn snapshot(&self) -> Vec<Metric> {
        self.list.clone()
    }
}
