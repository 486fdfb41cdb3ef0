//! Deployment packages and layers: zips checked and kept as blobs (so GetFunction can
//! hand them back), unpacked once per content hash under the work directory.

use crate::state::{self, dec, enc, Code, Layer};
use crate::{invalid, not_found, s, Input, Lambda, Output};
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::io::{Cursor, Read};
use std::path::PathBuf;
use virga_core::{AwsError, AwsResult, RequestContext};
use virga_store::KeyBuf;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// AWS's limit on a package's unzipped size (function and layers together).
pub const UNZIPPED_LIMIT: u64 = 262_144_000;

/// A checked zip.
pub struct Package {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// Checks that `bytes` is a zip AWS would accept.
pub fn check_zip(bytes: Vec<u8>) -> AwsResult<Package> {
    let unzip_error = || {
        invalid("Could not unzip uploaded file. Please check your file, then try to upload again.")
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(&bytes)).map_err(|_| unzip_error())?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let f = archive.by_index_raw(i).map_err(|_| unzip_error())?;
        total = total.saturating_add(f.size());
    }
    if total > UNZIPPED_LIMIT {
        return Err(invalid(format!(
            "Unzipped size must be smaller than {UNZIPPED_LIMIT} bytes"
        )));
    }
    let sha256 = B64.encode(Sha256::digest(&bytes));
    Ok(Package { bytes, sha256 })
}

/// The zip a `Code`/`Content` input names: inline bytes or an object in Virga's S3.
pub async fn fetch(l: &Lambda, region: &str, code: Option<&Value>) -> AwsResult<Package> {
    let empty = Map::new();
    let code = code.and_then(Value::as_object).unwrap_or(&empty);
    if code.get("ImageUri").is_some() {
        return Err(image_unsupported());
    }
    let bytes = if let Some(z) = code.get("ZipFile").and_then(Value::as_str) {
        B64.decode(z).map_err(|_| {
            invalid(
                "Could not unzip uploaded file. Please check your file, then try to upload again.",
            )
        })?
    } else if let (Some(bucket), Some(key)) = (
        code.get("S3Bucket").and_then(Value::as_str),
        code.get("S3Key").and_then(Value::as_str),
    ) {
        s3_object(
            l,
            region,
            bucket,
            key,
            code.get("S3ObjectVersion").and_then(Value::as_str),
        )
        .await?
    } else {
        return Err(invalid(
            "Please provide a source for function code: ZipFile, or S3Bucket and S3Key.",
        ));
    };
    check_zip(bytes)
}

pub fn image_unsupported() -> AwsError {
    invalid(
        "Virga runs functions from .zip deployment packages; PackageType Image (container images) is not supported.",
    )
}

/// GetObject through S3's own API.
async fn s3_object(
    l: &Lambda,
    region: &str,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> AwsResult<Vec<u8>> {
    use http_body_util::BodyExt;
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut uri = format!(
        "/{}/{}",
        bucket,
        key.split('/').map(enc).collect::<Vec<_>>().join("/")
    );
    if let Some(v) = version {
        uri.push_str(&format!("?versionId={}", enc(v)));
    }
    let mut ctx = RequestContext::system(l.clock.clone(), "lambda.amazonaws.com");
    ctx.region = region.to_string();
    let req = http::Request::builder()
        .method("GET")
        .uri(uri)
        .header("host", format!("s3.{region}.amazonaws.com"))
        .body(virga_core::service::empty_body())
        .map_err(|e| AwsError::internal(e.to_string()))?;
    let resp = l.directory.call("s3", ctx, req).await?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| AwsError::internal(e.to_string()))?
        .to_bytes();
    if status != 200 {
        let doc = virga_protocol::xml::parse(&body).ok();
        let tag = |t: &str| {
            doc.as_ref()
                .and_then(|d| d.child(t))
                .map(|c| c.text.clone())
                .unwrap_or_default()
        };
        return Err(invalid(format!(
            "Error occurred while GetObject. S3 Error Code: {}. S3 Error Message: {}",
            tag("Code"),
            tag("Message")
        )));
    }
    Ok(body.to_vec())
}

/// Stores a checked package; returns its record.
pub fn store(l: &Lambda, p: &Package) -> AwsResult<Code> {
    let mut w = l.blobs.writer()?;
    w.write(&p.bytes)?;
    let blob = w.commit()?;
    Ok(Code {
        sha256: p.sha256.clone(),
        size: p.bytes.len() as i64,
        blob,
    })
}

pub fn read_blob(l: &Lambda, blob: &str) -> AwsResult<Vec<u8>> {
    let mut r = l.blobs.open(blob, 0, u64::MAX)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)
        .map_err(|e| AwsError::internal(format!("code blob: {e}")))?;
    Ok(out)
}

fn hex_of(sha_b64: &str) -> String {
    hex::encode(
        B64.decode(sha_b64)
            .unwrap_or_else(|_| sha_b64.as_bytes().to_vec()),
    )
}

/// Unzips `zip` into `dir` (atomically: a temporary directory renamed into place).
fn unpack_into(l: &Lambda, zips: &[Vec<u8>], dir: &PathBuf) -> AwsResult<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let io = |e: std::io::Error| AwsError::internal(format!("unpack {}: {e}", dir.display()));
    let tmp = l
        .work_dir
        .join("tmp")
        .join(uuid::Uuid::new_v4().simple().to_string());
    std::fs::create_dir_all(&tmp).map_err(io)?;
    for z in zips {
        let extracted = zip::ZipArchive::new(Cursor::new(z)).and_then(|mut a| a.extract(&tmp));
        if let Err(e) = extracted {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(AwsError::internal(format!("unzip: {e}")));
        }
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another invocation unpacked the same content first.
        if !dir.is_dir() {
            return Err(io(e));
        }
    }
    Ok(())
}

/// Removes every unpacked package (they are unpacked again from their blobs when
/// next needed): at start-up and on reset, so replaced code does not pile up.
pub fn clear_unpacked(work_dir: &std::path::Path) {
    for d in ["code", "opt", "tmp"] {
        let _ = std::fs::remove_dir_all(work_dir.join(d));
    }
}

fn code_dir(l: &Lambda, code: &Code) -> PathBuf {
    l.work_dir.join("code").join(hex_of(&code.sha256))
}

fn opt_path(l: &Lambda, layers: &[Code]) -> Option<PathBuf> {
    if layers.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    for c in layers {
        h.update(c.sha256.as_bytes());
    }
    Some(
        l.work_dir
            .join("opt")
            .join(hex::encode(&h.finalize()[..16])),
    )
}

/// The function's unpacked code and the directory standing in for `/opt` (its
/// layers unpacked in order, later ones overwriting earlier ones, as on AWS), if both
/// are unpacked already.
pub fn unpacked(l: &Lambda, code: &Code, layers: &[Code]) -> Option<(PathBuf, Option<PathBuf>)> {
    let root = code_dir(l, code);
    let opt = opt_path(l, layers);
    (root.is_dir() && opt.as_ref().is_none_or(|o| o.is_dir())).then_some((root, opt))
}

/// Like [`unpacked`], unpacking what is not yet (slow for big packages: call it off
/// the async threads).
pub fn unpack(l: &Lambda, code: &Code, layers: &[Code]) -> AwsResult<(PathBuf, Option<PathBuf>)> {
    let root = code_dir(l, code);
    if !root.is_dir() {
        unpack_into(l, &[read_blob(l, &code.blob)?], &root)?;
    }
    let opt = opt_path(l, layers);
    if let Some(dir) = &opt {
        if !dir.is_dir() {
            let zips = layers
                .iter()
                .map(|c| read_blob(l, &c.blob))
                .collect::<AwsResult<Vec<_>>>()?;
            unpack_into(l, &zips, dir)?;
        }
    }
    Ok((root, opt))
}

// ---------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------

/// (name, version) of a layer version ARN `arn:aws:lambda:r:acct:layer:name:N`.
pub fn parse_layer_arn(arn: &str) -> Option<(String, String, u64)> {
    let p: Vec<&str> = arn.split(':').collect();
    match p.as_slice() {
        ["arn", _, "lambda", region, _, "layer", name, v] => {
            Some((region.to_string(), name.to_string(), v.parse().ok()?))
        }
        _ => None,
    }
}

fn layer_name(raw: &str) -> String {
    let p: Vec<&str> = raw.split(':').collect();
    match p.as_slice() {
        ["arn", _, "lambda", _, _, "layer", name, ..] => name.to_string(),
        _ => raw.to_string(),
    }
}

fn layer_arn(region: &str, name: &str) -> String {
    format!(
        "arn:aws:lambda:{region}:{}:layer:{name}",
        virga_core::DEFAULT_ACCOUNT
    )
}

fn layer_not_found() -> AwsError {
    not_found("The resource you requested does not exist.")
}

/// The stored layer version a function's `Layers` entry names.
pub fn load_layer(l: &Lambda, arn: &str) -> AwsResult<Layer> {
    let (region, name, v) = parse_layer_arn(arn)
        .ok_or_else(|| invalid(format!("Layer version {arn} does not exist.")))?;
    l.store
        .read(|r| r.get(state::LAYERS, &state::layer_key(&region, &name, v)))?
        .map(|b| dec(&b))
        .transpose()?
        .ok_or_else(|| invalid(format!("Layer version {arn} does not exist.")))
}

pub async fn publish_layer(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = layer_name(s(i, "LayerName").unwrap_or(""));
    let p = fetch(l, region, i.get("Content")).await?;
    let code = store(l, &p)?;
    let now = l.clock.now_millis();
    let info = l.store.transact(|t| {
        // Version numbers are never reused, even after a delete: the counter lives
        // under version 0.
        let counter = state::layer_key(region, &name, 0);
        let last = match t.get(state::LAYERS, &counter)? {
            Some(b) => dec::<Value>(&b)?["last"].as_u64().unwrap_or(0),
            None => 0,
        };
        let v = last + 1;
        t.put(state::LAYERS, &counter, &enc(&json!({ "last": v }))?)?;
        let mut info = Map::new();
        info.insert("LayerArn".into(), json!(layer_arn(region, &name)));
        info.insert(
            "LayerVersionArn".into(),
            json!(format!("{}:{v}", layer_arn(region, &name))),
        );
        info.insert(
            "Description".into(),
            json!(s(i, "Description").unwrap_or("")),
        );
        info.insert("CreatedDate".into(), json!(crate::last_modified(now)));
        info.insert("Version".into(), json!(v));
        for k in [
            "CompatibleRuntimes",
            "LicenseInfo",
            "CompatibleArchitectures",
        ] {
            if let Some(x) = i.get(k) {
                info.insert(k.into(), x.clone());
            }
        }
        let layer = Layer {
            info: info.clone(),
            code: code.clone(),
        };
        t.put(
            state::LAYERS,
            &state::layer_key(region, &name, v),
            &enc(&layer)?,
        )?;
        Ok(info)
    })?;
    let mut out = info;
    out.insert(
        "Content".into(),
        json!({"Location": code_location(&code), "CodeSha256": code.sha256, "CodeSize": code.size}),
    );
    Ok(out)
}

/// Where GetFunction/GetLayerVersion say the zip can be downloaded.
pub fn code_location(code: &Code) -> String {
    format!(
        "http://{}/_virga/lambda/code/{}",
        virga_core::service::listen_addr(),
        code.blob
    )
}

fn layer_versions(l: &Lambda, region: &str, name: &str) -> AwsResult<Vec<Layer>> {
    let prefix = KeyBuf::new().str(region).str(name).into_vec();
    let rows = l
        .store
        .read(|r| state::scan_prefix(r, state::LAYERS, &prefix, None, usize::MAX))?;
    let mut out = Vec::new();
    for (k, v) in rows {
        // Skip the counter (version 0).
        if k.ends_with(&0u64.to_be_bytes()) {
            continue;
        }
        out.push(dec::<Layer>(&v)?);
    }
    Ok(out)
}

fn runtime_matches(layer: &Layer, runtime: Option<&str>) -> bool {
    match runtime {
        None => true,
        Some(rt) => layer
            .info
            .get("CompatibleRuntimes")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == rt)),
    }
}

pub fn list_layers(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let prefix = KeyBuf::new().str(region).into_vec();
    let rows = l
        .store
        .read(|r| state::scan_prefix(r, state::LAYERS, &prefix, None, usize::MAX))?;
    let mut latest: Vec<(String, Layer)> = Vec::new();
    for (k, v) in rows {
        if k.ends_with(&0u64.to_be_bytes()) {
            continue;
        }
        let layer: Layer = dec(&v)?;
        if !runtime_matches(&layer, s(i, "CompatibleRuntime")) {
            continue;
        }
        let name = layer.info["LayerArn"]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .unwrap_or("")
            .to_string();
        match latest.last_mut() {
            Some((n, l)) if *n == name => *l = layer,
            _ => latest.push((name, layer)),
        }
    }
    let layers: Vec<Map<String, Value>> = latest
        .into_iter()
        .map(|(name, layer)| {
            crate::obj(json!({
                "LayerName": name,
                "LayerArn": layer.info["LayerArn"],
                "LatestMatchingVersion": layer.info,
            }))
        })
        .collect();
    Ok(crate::page(layers, "LayerName", "Layers", i, 50))
}

pub fn list_layer_versions(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = layer_name(s(i, "LayerName").unwrap_or(""));
    let mut versions: Vec<Layer> = layer_versions(l, region, &name)?
        .into_iter()
        .filter(|x| runtime_matches(x, s(i, "CompatibleRuntime")))
        .collect();
    versions.reverse();
    let infos = versions.into_iter().map(|x| x.info).collect();
    Ok(crate::page(infos, "Version", "LayerVersions", i, 50))
}

pub fn get_layer_version(l: &Lambda, ctx: &RequestContext, i: &Input) -> AwsResult<Output> {
    let (region, name, v) = match s(i, "Arn") {
        Some(arn) => parse_layer_arn(arn).ok_or_else(layer_not_found)?,
        None => (
            ctx.region.clone(),
            layer_name(s(i, "LayerName").unwrap_or("")),
            i.get("VersionNumber").and_then(Value::as_u64).unwrap_or(0),
        ),
    };
    if v == 0 {
        return Err(layer_not_found());
    }
    let layer: Layer = l
        .store
        .read(|r| r.get(state::LAYERS, &state::layer_key(&region, &name, v)))?
        .map(|b| dec(&b))
        .transpose()?
        .ok_or_else(layer_not_found)?;
    let mut out = layer.info;
    out.insert(
        "Content".into(),
        json!({"Location": code_location(&layer.code), "CodeSha256": layer.code.sha256, "CodeSize": layer.code.size}),
    );
    Ok(out)
}

pub fn delete_layer_version(l: &Lambda, region: &str, i: &Input) -> AwsResult<Output> {
    let name = layer_name(s(i, "LayerName").unwrap_or(""));
    let v = i.get("VersionNumber").and_then(Value::as_u64).unwrap_or(0);
    if v > 0 {
        // The blob stays: functions created with this layer keep running with it, as
        // on AWS.
        l.store
            .transact(|t| t.delete(state::LAYERS, &state::layer_key(region, &name, v)))?;
    }
    Ok(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn checks_zips() {
        let z = zip_of(&[("lambda_function.py", b"def h(e, c): return 1\n")]);
        let p = check_zip(z.clone()).unwrap();
        assert_eq!(p.sha256, B64.encode(Sha256::digest(&z)));
        let e = check_zip(b"not a zip".to_vec()).err().unwrap();
        assert_eq!(e.code, "InvalidParameterValueException");
        assert!(e.message.starts_with("Could not unzip uploaded file"));
    }

    #[test]
    fn layer_arns() {
        assert_eq!(
            parse_layer_arn("arn:aws:lambda:us-east-1:000000000000:layer:deps:3"),
            Some(("us-east-1".into(), "deps".into(), 3))
        );
        assert_eq!(parse_layer_arn("deps:3"), None);
        assert_eq!(
            layer_name("arn:aws:lambda:us-east-1:000000000000:layer:deps"),
            "deps"
        );
    }
}
