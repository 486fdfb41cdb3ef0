//! The internal event bus: services publish events (an S3 object was created) and
//! other services consume them (SQS, SNS, Lambda deliver notifications). An event no
//! consumer has taken yet stays queued in the publishing service's durable outbox;
//! the bus itself only carries it in-process.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// A notification addressed to another service's resource (by ARN).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Service that emitted it, e.g. `s3`.
    pub source: String,
    /// Where it goes: an SQS queue, SNS topic or Lambda function ARN.
    pub target_arn: String,
    /// The event document as AWS delivers it (for S3: `{"Records": [...]}`).
    pub payload: serde_json::Value,
}

/// An event handed to its consumer, who answers once it has stored (or refused) it, so
/// the publisher can drop its outbox copy only after the consumer's write is durable.
pub struct Delivery {
    pub event: Event,
    pub ack: oneshot::Sender<Result<(), String>>,
}

/// Subscribers are registered per target service (`sqs`, `sns`, `lambda`).
#[derive(Default)]
pub struct EventBus {
    subscribers: Mutex<Vec<(String, mpsc::UnboundedSender<Delivery>)>>,
}

impl EventBus {
    pub fn new() -> EventBus {
        EventBus::default()
    }

    /// Registers the consumer of events whose target ARN is in `service` (`arn:aws:<service>:...`).
    pub fn subscribe(&self, service: &str) -> mpsc::UnboundedReceiver<Delivery> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut s) = self.subscribers.lock() {
            s.push((service.to_string(), tx));
        }
        rx
    }

    /// Whether some service consumes events for `target_arn`.
    pub fn has_consumer(&self, target_arn: &str) -> bool {
        let service = target_arn.split(':').nth(2).unwrap_or("");
        self.subscribers
            .lock()
            .map(|s| s.iter().any(|(svc, tx)| svc == service && !tx.is_closed()))
            .unwrap_or(false)
    }

    /// Hands the event to its consumer and returns the consumer's answer to come;
    /// gives the event back if there is no consumer.
    pub fn publish(&self, event: Event) -> Result<oneshot::Receiver<Result<(), String>>, Event> {
        let service = event.target_arn.split(':').nth(2).unwrap_or("").to_string();
        let Ok(subs) = self.subscribers.lock() else {
            return Err(event);
        };
        match subs
            .iter()
            .find(|(svc, tx)| *svc == service && !tx.is_closed())
        {
            Some((_, tx)) => {
                let (ack, answer) = oneshot::channel();
                tx.send(Delivery { event, ack })
                    .map(|_| answer)
                    .map_err(|e| e.0.event)
            }
            None => Err(event),
        }
    }
}
