//! The built-in `echo` upstream: answers with the request it received, after
//! the gateway's changes, so a newcomer can see exactly what an API behind
//! authgate would be sent.

use crate::body::{BodyFlags, LimitedBody};
use crate::error::{GatewayError, Reason};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};

/// Reads the whole (already capped) body and describes the request as JSON.
pub async fn respond(
    req: Request<LimitedBody>,
    flags: &BodyFlags,
) -> Result<Response<Bytes>, GatewayError> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) if flags.error().is_some() => {
            return Err(flags.error().unwrap_or(GatewayError::PayloadTooLarge))
        }
        Err(_) => {
            return Err(GatewayError::bad_request(
                Reason::BodyReadFailed,
                "The request body could not be read.",
            ))
        }
    };
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let joined = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        headers.insert(name.as_str().to_string(), Value::String(joined));
    }
    let description = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_bytes": body.len(),
    });
    let mut text = serde_json::to_string_pretty(&description).unwrap_or_default();
    text.push('\n');
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(text))
        .map_err(|_| GatewayError::BadGateway {
            reason: Reason::EchoFailed,
        })
}
