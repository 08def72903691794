//! Usage reports: a serving VM sends what it let through (signed with the edge's key) when
//! its window is due, one report in flight at a time; a report that is not accepted is
//! dropped (the next one carries the later uses), never retried, and never touches requests.

use pat_core::protocol::OCTET_STREAM;

use super::host::{Call, Event, Level, RootHost};
use super::{Answer, Root, described};
use crate::config::Usage;

impl Root {
    /// Sends this VM's usage report when one is due.
    pub(super) fn report_if_due(&mut self, host: &impl RootHost, usage: &Usage) {
        let now = host.now_millis();
        let Some(uses) = host.usage(|log| log.take_due(now, usage.config.interval)) else {
            return;
        };
        let body = pat_core::report::sign(&uses, now, &usage.key);
        let call = Call {
            cluster: &usage.config.cluster,
            headers: vec![
                (":method", "POST"),
                (":path", usage.config.path.as_str()),
                (":authority", usage.config.authority.as_str()),
                ("content-type", OCTET_STREAM),
            ],
            body: Some(&body),
            timeout: usage.config.timeout,
        };
        match host.dispatch(&call) {
            Ok(token) => self.reporting = Some(token),
            Err(why) => {
                host.count(Event::Report { delivered: false });
                host.log(
                    Level::Warn,
                    &format!(
                        "pat-edge: cannot send a usage report to cluster {}: {why}",
                        usage.config.cluster
                    ),
                );
                host.usage(|log| log.finished());
            }
        }
    }
}

/// The origin's answer to a usage report: `200` is delivered; anything else (a refusal, an
/// error, no answer) drops the report.
pub(super) fn answered(host: &impl RootHost, answer: Answer) {
    let status = Root::status(host, answer);
    let delivered = status.as_deref() == Some("200");
    host.count(Event::Report { delivered });
    if !delivered {
        host.log(
            Level::Warn,
            &format!(
                "pat-edge: a usage report was not accepted ({}); it is dropped, the next one carries later uses",
                described(status.as_deref())
            ),
        );
    }
    host.usage(|log| log.finished());
}
