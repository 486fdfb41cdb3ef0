//! SNS message signatures: RSA PKCS#1 v1.5 over AWS's canonical "string to sign",
//! SHA1 for SignatureVersion 1 and SHA256 for 2, with the key in `keys/` (public on
//! purpose, see keys/README.md). Subscribers that verify signatures fetch the
//! certificate from `SigningCertURL`, which Virga serves.
//!
//! The RSA private-key operation is written here on num-bigint rather than taken
//! from the `rsa` crate (RUSTSEC-2023-0071) or ring (which cannot sign with SHA1):
//! the key is published, so constant-time arithmetic buys nothing.

use base64::Engine;
use num_bigint::BigUint;
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The signing certificate (PEM), served at [`CERT_PATH`].
pub const CERTIFICATE_PEM: &str = include_str!("../keys/SimpleNotificationService.pem");
const KEY_PEM: &str = include_str!("../keys/signing-key.pem");

/// Where Virga serves [`CERTIFICATE_PEM`].
pub const CERT_PATH: &str = "/_virga/sns/SimpleNotificationService.pem";

/// The fields AWS signs for each message type, in the (sorted) order it signs them.
const NOTIFICATION_FIELDS: &[&str] = &[
    "Message",
    "MessageId",
    "Subject",
    "Timestamp",
    "TopicArn",
    "Type",
];
const CONFIRMATION_FIELDS: &[&str] = &[
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
];

/// AWS's string to sign: "Name\nValue\n" for each signed field present in `doc`.
pub fn string_to_sign(doc: &Map<String, Value>) -> String {
    let fields = match doc.get("Type").and_then(Value::as_str) {
        Some("Notification") => NOTIFICATION_FIELDS,
        _ => CONFIRMATION_FIELDS,
    };
    let mut out = String::new();
    for name in fields {
        if let Some(v) = doc.get(*name).and_then(Value::as_str) {
            out.push_str(name);
            out.push('\n');
            out.push_str(v);
            out.push('\n');
        }
    }
    out
}

/// Sets `SignatureVersion`, `Signature` and `SigningCertURL` on a message document.
/// `version` is the topic's SignatureVersion ("1" = SHA1, "2" = SHA256).
pub fn sign_document(doc: &mut Map<String, Value>, version: &str, host: &str) {
    let version = if version == "2" { "2" } else { "1" };
    let signature = sign(string_to_sign(doc).as_bytes(), version);
    doc.insert("SignatureVersion".into(), Value::from(version));
    doc.insert("Signature".into(), Value::from(signature));
    doc.insert(
        "SigningCertURL".into(),
        Value::from(format!("http://{host}{CERT_PATH}")),
    );
}

/// Base64 RSA signature of `data` with SHA1 (version "1") or SHA256 (version "2").
pub fn sign(data: &[u8], version: &str) -> String {
    // DER DigestInfo prefixes from RFC 8017 §9.2, note 1.
    const SHA1_INFO: &[u8] = &[
        0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
    ];
    const SHA256_INFO: &[u8] = &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    let mut digest_info = Vec::with_capacity(64);
    if version == "2" {
        digest_info.extend_from_slice(SHA256_INFO);
        digest_info.extend_from_slice(&Sha256::digest(data));
    } else {
        digest_info.extend_from_slice(SHA1_INFO);
        digest_info.extend_from_slice(&Sha1::digest(data));
    }
    let key = key();
    // EMSA-PKCS1-v1_5: 00 01 FF..FF 00 DigestInfo, as long as the modulus.
    let mut em = vec![0xffu8; key.len];
    em[0] = 0;
    em[1] = 1;
    let info_start = key.len - digest_info.len();
    em[info_start - 1] = 0;
    em[info_start..].copy_from_slice(&digest_info);
    let sig = key.private_op(&BigUint::from_bytes_be(&em));
    let mut bytes = sig.to_bytes_be();
    while bytes.len() < key.len {
        bytes.insert(0, 0);
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An RSA private key in CRT form.
struct RsaKey {
    /// Modulus length in bytes.
    len: usize,
    p: BigUint,
    q: BigUint,
    dp: BigUint,
    dq: BigUint,
    qinv: BigUint,
}

impl RsaKey {
    /// m^d mod n by the Chinese remainder theorem (about 4x faster than one modpow).
    fn private_op(&self, m: &BigUint) -> BigUint {
        let m1 = m.modpow(&self.dp, &self.p);
        let m2 = m.modpow(&self.dq, &self.q);
        let m2_mod_p = &m2 % &self.p;
        let diff = if m1 >= m2_mod_p {
            m1 - m2_mod_p
        } else {
            &self.p + m1 - m2_mod_p
        };
        let h = (&self.qinv * diff) % &self.p;
        m2 + h * &self.q
    }
}

fn key() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(|| parse_pkcs1_pem(KEY_PEM).expect("the embedded SNS signing key parses"))
}

/// Reads a PKCS#1 `RSA PRIVATE KEY` PEM:
/// SEQUENCE { version, n, e, d, p, q, dp, dq, qinv }.
fn parse_pkcs1_pem(pem: &str) -> Option<RsaKey> {
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let (tag, body, _) = der_element(&der)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = body;
    let mut ints = Vec::with_capacity(9);
    while !rest.is_empty() {
        let (tag, value, after) = der_element(rest)?;
        if tag != 0x02 {
            return None;
        }
        ints.push(BigUint::from_bytes_be(value));
        rest = after;
    }
    if ints.len() < 9 {
        return None;
    }
    let len = ints[1].bits().div_ceil(8) as usize;
    let mut it = ints.into_iter().skip(4);
    Some(RsaKey {
        len,
        p: it.next()?,
        q: it.next()?,
        dp: it.next()?,
        dq: it.next()?,
        qinv: it.next()?,
    })
}

/// One DER element: (tag, contents, the bytes after it).
fn der_element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *data.first()?;
    let first = *data.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *data.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, data.get(header..end)?, data.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn embedded_key_parses_and_signs_deterministically() {
        let k = key();
        assert_eq!(k.len, 128);
        let a = sign(b"hello", "1");
        assert_eq!(a, sign(b"hello", "1"));
        assert_ne!(a, sign(b"hello", "2"));
        let raw = base64::engine::general_purpose::STANDARD.decode(a).unwrap();
        assert_eq!(raw.len(), 128);
    }

    #[test]
    fn signature_round_trips_through_public_exponent() {
        // Recompute n = p*q and check sig^65537 mod n is the EMSA encoding.
        let k = key();
        let n = &k.p * &k.q;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sign(b"abc", "2"))
            .unwrap();
        let em = BigUint::from_bytes_be(&sig)
            .modpow(&BigUint::from(65537u32), &n)
            .to_bytes_be();
        // Leading 00 is dropped by to_bytes_be: 01 FF ... 00 DigestInfo(hash).
        assert_eq!(em[0], 1);
        assert!(em.ends_with(&Sha256::digest(b"abc")));
    }

    #[test]
    fn string_to_sign_uses_the_type_specific_fields_in_order() {
        let doc = json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "t",
            "Message": "hi", "Timestamp": "ts", "UnsubscribeURL": "u",
        });
        let s = string_to_sign(doc.as_object().unwrap());
        assert_eq!(
            s,
            "Message\nhi\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
        );
        let doc = json!({
            "Type": "SubscriptionConfirmation", "MessageId": "m", "TopicArn": "t",
            "Message": "hi", "Timestamp": "ts", "Token": "tok", "SubscribeURL": "s",
        });
        let s = string_to_sign(doc.as_object().unwrap());
        assert!(s.starts_with(
            "Message\nhi\nMessageId\nm\nSubscribeURL\ns\nTimestamp\nts\nToken\ntok\n"
        ));
    }
}
