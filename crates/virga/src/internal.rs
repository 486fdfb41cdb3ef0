//! Virga's own endpoints under `/_virga/`: health, reset, clock, pending events.

use crate::gateway::Gateway;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use virga_core::service::full_body;
use virga_core::Body;

fn json_response(status: u16, v: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full_body(v.to_string()))
        .unwrap_or_else(|_| Response::new(full_body("")))
}

fn clock_state(gw: &Gateway) -> Value {
    json!({
        "now": gw.clock.now_secs_f64(),
        "offset_seconds": gw.clock.offset_secs(),
    })
}

pub async fn handle(gw: &Arc<Gateway>, req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::GET, "/_virga/health") => {
            let services: serde_json::Map<String, Value> = gw
                .services
                .iter()
                .map(|s| (s.name().to_string(), json!("running")))
                .collect();
            json_response(
                200,
                json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "uptime": gw.started.elapsed().as_secs_f64(),
                    "data_dir": gw.data_dir,
                    "services": services,
                }),
            )
        }
        (Method::POST, "/_virga/reset") => {
            for s in &gw.services {
                if let Err(e) = s.reset() {
                    return json_response(500, json!({"error": e.message}));
                }
            }
            gw.clock.reset();
            json_response(200, json!({"reset": true}))
        }
        (Method::GET, "/_virga/clock") => json_response(200, clock_state(gw)),
        (Method::POST, "/_virga/clock") => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return json_response(400, json!({"error": e.to_string()})),
            };
            let v: Value = if body.is_empty() {
                json!({})
            } else {
                match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => {
                        return json_response(400, json!({"error": format!("invalid JSON: {e}")}))
                    }
                }
            };
            if v.get("reset").and_then(|r| r.as_bool()) == Some(true) {
                gw.clock.reset();
            }
            match v.get("advance").map(|a| a.as_f64()) {
                Some(Some(secs)) => gw.clock.advance(secs),
                Some(None) => {
                    return json_response(
                        400,
                        json!({"error": "advance must be a number of seconds"}),
                    )
                }
                None => {}
            }
            json_response(200, clock_state(gw))
        }
        (Method::GET, "/_virga/sns/messages") => {
            let protocol = req
                .uri()
                .query()
                .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "protocol"))
                .map(|(_, v)| v.into_owned());
            match virga_sns::captured(&gw.sns, protocol.as_deref()) {
                Ok(messages) => json_response(200, json!({ "messages": messages })),
                Err(e) => json_response(500, json!({"error": e.message})),
            }
        }
        (Method::GET, virga_sns::signing::CERT_PATH) => Response::builder()
            .header("content-type", "application/x-pem-file")
            .body(full_body(virga_sns::signing::CERTIFICATE_PEM))
            .unwrap_or_else(|_| Response::new(full_body(""))),
        (Method::GET, "/_virga/events") => match virga_s3::pending_events(&gw.s3, 1000) {
            Ok(events) => json_response(200, json!({ "events": events })),
            Err(e) => json_response(500, json!({"error": e.message})),
        },
        (Method::GET, p) if p.starts_with("/_virga/lambda/code/") => {
            match gw.lambda.code_zip(&p["/_virga/lambda/code/".len()..]) {
                Ok(zip) => Response::builder()
                    .header("content-type", "application/zip")
                    .body(full_body(zip))
                    .unwrap_or_else(|_| Response::new(full_body(""))),
                Err(_) => json_response(404, json!({"error": "no such deployment package"})),
            }
        }
        _ => json_response(
            404,
            json!({"error": format!("no such Virga endpoint: {path}")}),
        ),
    }
}
