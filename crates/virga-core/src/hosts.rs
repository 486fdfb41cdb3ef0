//! What a Host header says about the request: S3 virtual-host addressing
//! (`bucket.s3.localhost`, `bucket.localhost`), S3 website endpoints
//! (`bucket.s3-website.localhost`) and service host names (`sqs.us-east-1.localhost`).

/// The labels of a host before its base domain (`localhost` or `amazonaws.com`), or
/// None for an IP address or an unknown domain.
fn prefix_labels(host: &str) -> Option<Vec<&str>> {
    let host = host.trim();
    // Strip the port (IPv6 literals are bracketed and never virtual hosts).
    if host.starts_with('[') {
        return None;
    }
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let name = name.trim_end_matches('.');
    let prefix = if name == "localhost" || name == "amazonaws.com" {
        ""
    } else if let Some(p) = name.strip_suffix(".localhost") {
        p
    } else if let Some(p) = name.strip_suffix(".amazonaws.com") {
        p
    } else {
        name.strip_suffix(".localhost.localstack.cloud")?
    };
    Some(if prefix.is_empty() {
        Vec::new()
    } else {
        prefix.split('.').collect()
    })
}

#[derive(Debug, PartialEq, Eq)]
pub struct S3Host {
    /// The bucket named by the host, for virtual-host-style requests.
    pub bucket: Option<String>,
    /// A website endpoint (`bucket.s3-website.localhost`).
    pub website: bool,
}

/// Reads S3 addressing from a host name.
pub fn s3_host(host: &str) -> S3Host {
    let none = S3Host {
        bucket: None,
        website: false,
    };
    let Some(labels) = prefix_labels(host) else {
        return none;
    };
    if labels.is_empty() {
        return none;
    }
    let svc = labels
        .iter()
        .position(|l| *l == "s3" || l.starts_with("s3-website") || l.starts_with("s3."));
    match svc {
        Some(i) => S3Host {
            bucket: (i > 0).then(|| labels[..i].join(".")),
            website: labels[i].starts_with("s3-website"),
        },
        None => {
            // `bucket.localhost`: a host that is not a service name is a bucket.
            if crate_service_label(labels[0]) {
                none
            } else {
                S3Host {
                    bucket: Some(labels.join(".")),
                    website: false,
                }
            }
        }
    }
}

/// Service endpoint prefixes that can lead a host name (`sqs.us-east-1.localhost`).
const SERVICE_LABELS: &[&str] = &[
    "sqs",
    "sns",
    "dynamodb",
    "streams",
    "lambda",
    "logs",
    "events",
    "states",
    "iam",
    "sts",
    "cognito-idp",
    "cognito-identity",
    "apigateway",
    "execute-api",
    "ses",
    "email",
    "monitoring",
    "kinesis",
    "secretsmanager",
    "ssm",
    "kms",
    "cloudformation",
    "scheduler",
];

fn crate_service_label(label: &str) -> bool {
    SERVICE_LABELS.contains(&label)
}

/// The service a host name names, e.g. `sqs` for `sqs.us-east-1.localhost:4566`.
pub fn service_from_host(host: &str) -> Option<String> {
    let labels = prefix_labels(host)?;
    for l in &labels {
        if crate_service_label(l) {
            return Some((*l).to_string());
        }
        if *l == "s3" || l.starts_with("s3-website") {
            return Some("s3".into());
        }
    }
    if labels.is_empty() {
        None
    } else {
        // A bucket name as a virtual host.
        Some("s3".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_addressing() {
        assert_eq!(s3_host("localhost:4566").bucket, None);
        assert_eq!(s3_host("127.0.0.1:4566").bucket, None);
        assert_eq!(s3_host("s3.localhost:4566").bucket, None);
        assert_eq!(s3_host("b1.localhost:4566").bucket.as_deref(), Some("b1"));
        assert_eq!(
            s3_host("my.dotted.b.s3.localhost").bucket.as_deref(),
            Some("my.dotted.b")
        );
        assert_eq!(
            s3_host("b.s3.us-east-1.localhost:1").bucket.as_deref(),
            Some("b")
        );
        assert_eq!(
            s3_host("b.s3.us-east-1.amazonaws.com").bucket.as_deref(),
            Some("b")
        );
        let w = s3_host("site.s3-website.localhost:4566");
        assert!(w.website);
        assert_eq!(w.bucket.as_deref(), Some("site"));
        assert!(s3_host("site.s3-website-us-east-1.localhost").website);
        assert_eq!(s3_host("sqs.us-east-1.localhost").bucket, None);
    }

    #[test]
    fn services() {
        assert_eq!(
            service_from_host("sqs.us-east-1.localhost:4566").as_deref(),
            Some("sqs")
        );
        assert_eq!(service_from_host("b.s3.localhost").as_deref(), Some("s3"));
        assert_eq!(service_from_host("bucket.localhost").as_deref(), Some("s3"));
        assert_eq!(service_from_host("localhost:4566"), None);
        assert_eq!(service_from_host("127.0.0.1:4566"), None);
    }
}
