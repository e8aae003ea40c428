//! The OpenAPI 3.0 document served at `/openapi.json`, written by hand (a generator crate would
//! cost more build time than this file). It is as strict as the relay: every pattern comes from
//! [`super::validate`], every limit from the running [`RelayConfig`], and every error code from
//! [`ErrorCode::ALL`]; server/tests/relay_api.rs checks, request by request, that the relay
//! accepts exactly what this document accepts. `docs/PROTOCOL.md` is the prose reference.

use super::config::{RelayConfig, SMALL_BODY_BYTES};
use super::errors::ErrorCode;
use super::validate::{self as v, MAX_INTEGER};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use ErrorCode as E;

/// Refusals of a signed request before the handler's own checks.
const AUTH: &[ErrorCode] = &[
    E::UnsignedRequest,
    E::MalformedAuth,
    E::StaleTimestamp,
    E::UnknownDevice,
    E::BadSignature,
    E::RevokedDevice,
    E::RateLimited,
    E::ReplayedNonce,
    E::DeferredNotAllowed,
    E::MalformedQuery,
    E::StorageUnavailable,
];

/// Refusals any route may give (routing and last-resort mappings).
const ANY: &[ErrorCode] = &[
    E::NotFound,
    E::MethodNotAllowed,
    E::MalformedRequest,
    E::Internal,
];

fn error_ref() -> Value {
    json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } })
}

/// Responses: `ok` plus one entry per status, listing the codes of that status.
fn responses(ok: Value, groups: &[&[ErrorCode]]) -> Value {
    let mut by_status: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for c in groups.iter().flat_map(|g| g.iter()) {
        let list = by_status.entry(c.status().as_u16()).or_default();
        if !list.contains(&c.as_str()) {
            list.push(c.as_str());
        }
    }
    let mut out = Map::new();
    if let Some(ok) = ok.as_object() {
        out.extend(ok.clone());
    }
    for (status, codes) in by_status {
        out.insert(
            status.to_string(),
            json!({ "description": codes.join(", "), "content": error_ref() }),
        );
    }
    let any: Vec<&str> = ANY.iter().map(|c| c.as_str()).collect();
    out.insert(
        "default".into(),
        json!({ "description": any.join(", "), "content": error_ref() }),
    );
    Value::Object(out)
}

fn integer(min: u64) -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": min, "maximum": MAX_INTEGER })
}

fn pattern(p: &str) -> Value {
    json!({ "type": "string", "pattern": p })
}

fn signed_params() -> Vec<Value> {
    ["Device", "Timestamp", "Nonce", "Signature"]
        .iter()
        .map(|n| json!({ "$ref": format!("#/components/parameters/{n}") }))
        .collect()
}

fn with_params(mut base: Vec<Value>, extra: &[Value]) -> Value {
    base.extend(extra.iter().cloned());
    Value::Array(base)
}

fn json_body(schema: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn ok_json(desc: &str, schema: Option<&str>) -> Value {
    match schema {
        Some(s) => {
            json!({ "200": { "description": desc, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{s}") } } } } })
        }
        None => json!({ "200": { "description": desc } }),
    }
}

/// The document for a relay running with `cfg`.
pub fn document(cfg: &RelayConfig) -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let sha_param = json!({ "name": "sha256", "in": "path", "required": true, "schema": pattern(v::SHA256_PATTERN),
        "description": "lowercase hex SHA-256 of the ciphertext, as sent (never percent-encoded)" });
    let payload_max = cfg.envelope_cap_base64();
    let signed = json!([{ "deviceSignature": [] }]);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Amanat sync relay",
            "version": "1",
            "description": "Stores and forwards device ciphertext. Every /v1 request except POST /v1/revocations is signed by the device key: see docs/PROTOCOL.md and amanat_protocol. Numbers in headers and queries are plain decimals (no sign, no leading zero), hex is lowercase, and nothing is percent-encoded. Unknown or repeated query parameters are refused (malformed_query)."
        },
        "components": {
            "securitySchemes": {
                "deviceSignature": { "type": "apiKey", "in": "header", "name": "x-amanat-signature",
                    "description": "Ed25519 over AMANAT-REQUEST-V1\\nMETHOD\\nPATH?QUERY\\nTIMESTAMP_MS\\nNONCE\\nSHA256(body); with x-amanat-device, x-amanat-timestamp, x-amanat-nonce" }
            },
            "parameters": {
                "Device": { "name": "x-amanat-device", "in": "header", "required": true, "schema": pattern(v::DEVICE_ID_PATTERN) },
                "Timestamp": { "name": "x-amanat-timestamp", "in": "header", "required": true, "schema": integer(0),
                    "description": "milliseconds since the Unix epoch, within 5 minutes of the relay clock" },
                "Nonce": { "name": "x-amanat-nonce", "in": "header", "required": true, "schema": pattern(v::NONCE_PATTERN) },
                "Signature": { "name": "x-amanat-signature", "in": "header", "required": true, "schema": pattern(v::SIGNATURE_PATTERN) },
                "Expires": { "name": "x-amanat-expires", "in": "header", "required": false, "schema": integer(0),
                    "description": "deferred request (blob chunk PUT only): signed over AMANAT-DEFERRED-V1\\nMETHOD\\nPATH?QUERY\\nISSUED_MS\\nEXPIRES_MS\\nNONCE\\nSHA256(body), x-amanat-timestamp being the issue time; valid until this time, at most 72 h after issue; no nonce kept" }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": {
                    "error": { "type": "string", "enum": codes },
                    "revocation": { "$ref": "#/components/schemas/Revocation" },
                    "id": { "type": "string" }, "offset": integer(0), "size": integer(0) } },
                "EnrollmentCode": { "type": "object", "additionalProperties": false,
                    "required": ["code_id","org_fingerprint","expires_at","role","signature"],
                    "properties": { "code_id": pattern(v::CODE_ID_PATTERN), "org_fingerprint": pattern(v::FINGERPRINT_PATTERN),
                        "expires_at": integer(0), "role": {"type":"string","enum":["field","hq"]},
                        "relay_url": { "type": "string", "pattern": "^https?://[!-~]+$", "minLength": 12, "maxLength": 256 },
                        "signature": pattern(v::SIGNATURE_PATTERN) } },
                "EnrollRequest": { "type": "object", "additionalProperties": false, "required": ["code","signing_public_key","age_recipient"],
                    "properties": { "code": {"$ref":"#/components/schemas/EnrollmentCode"}, "signing_public_key": pattern(v::PUBLIC_KEY_PATTERN),
                        "age_recipient": pattern(v::AGE_RECIPIENT_PATTERN) } },
                "Revocation": { "type": "object", "additionalProperties": false, "required": ["device_id","org_fingerprint","revoked_at","signature"],
                    "properties": { "device_id": pattern(v::DEVICE_ID_PATTERN), "org_fingerprint": pattern(v::FINGERPRINT_PATTERN),
                        "revoked_at": integer(0), "signature": pattern(v::SIGNATURE_PATTERN) } },
                "Envelope": { "type": "object", "additionalProperties": false, "required": ["id","recipients","payload"],
                    "properties": {
                        "id": pattern(v::UUID_V7_PATTERN),
                        "recipients": {"type":"array","minItems":1,"maxItems":v::MAX_RECIPIENTS,"items":pattern(v::RECIPIENT_PATTERN)},
                        "payload": {"type":"string","format":"byte","pattern":v::BASE64_PATTERN,"minLength":4,"maxLength":payload_max,
                            "description": format!("standard base64 of 1 to {} bytes (longer: 413 envelope_too_large)", cfg.envelope_cap())} } },
                "PushRequest": { "type": "object", "additionalProperties": false, "required": ["envelopes"],
                    "properties": { "envelopes": {"type":"array","minItems":1,"maxItems":cfg.max_batch_envelopes,"items":{"$ref":"#/components/schemas/Envelope"}} },
                    "description": format!("at most {} bytes as sent", cfg.max_batch_bytes) },
                "PushResponse": { "type": "object", "properties": { "acks": {"type":"array","items":{"type":"object","properties":{"id":{"type":"string"},"seq":integer(1),"duplicate":{"type":"boolean"}}}} } },
                "PullResponse": { "type": "object", "properties": {
                    "envelopes": {"type":"array","items":{"type":"object","properties":{"seq":integer(1),"id":{"type":"string"},"sender":{"type":"string"},"payload":{"type":"string","format":"byte"}}}},
                    "next_after": integer(0), "more": {"type":"boolean"} } }
            }
        },
        "paths": {
            "/v1/enroll": { "post": { "summary": "Enroll a device with a one-time org-signed code (request signed by the new device key)",
                "parameters": signed_params(),
                "requestBody": json_body("EnrollRequest"),
                "responses": responses(ok_json("enrolled; returns device_id, role and org.pub", None),
                    &[AUTH, &[E::BodyTooLarge, E::MalformedBody, E::InvalidOrgSignature, E::WrongOrganisation, E::CodeUsed, E::AlreadyEnrolled, E::CodeExpired]]) } },
            "/v1/revocations": {
                "post": { "summary": "Revoke a device (org-signed; no device signature needed)",
                    "requestBody": json_body("Revocation"),
                    "responses": responses(ok_json("revoked", None),
                        &[&[E::BodyTooLarge, E::MalformedBody, E::InvalidOrgSignature, E::WrongOrganisation, E::DeviceNotEnrolled, E::StorageUnavailable]]) },
                "get": { "summary": "All org-signed revocations", "security": signed, "parameters": signed_params(),
                    "responses": responses(ok_json("{\"revocations\":[Revocation]}", None), &[AUTH]) } },
            "/v1/envelopes": {
                "post": { "summary": "Push a batch (atomic, idempotent by envelope id)", "security": signed, "parameters": signed_params(),
                    "requestBody": json_body("PushRequest"),
                    "responses": responses(ok_json("acknowledged after commit", Some("PushResponse")),
                        &[AUTH, &[E::MalformedBody, E::EmptyBatch, E::MalformedEnvelopeId, E::MalformedRecipients, E::MalformedPayload,
                            E::BodyTooLarge, E::BatchTooLarge, E::EnvelopeTooLarge, E::EnvelopeIdConflict]]) },
                "get": { "summary": "Pull envelopes routed to the caller after a cursor", "security": signed,
                    "parameters": with_params(signed_params(), &[
                        json!({"name":"after","in":"query","schema":integer(0),"description":"cursor: envelopes with seq > after (default 0)"}),
                        json!({"name":"limit","in":"query","schema":integer(1),
                            "description": format!("page size (default 100); more than {} is served as {}", cfg.max_pull_limit, cfg.max_pull_limit)})]),
                    "responses": responses(ok_json("a page", Some("PullResponse")), &[AUTH]) } },
            "/v1/blobs/{sha256}": {
                "parameters": [ sha_param ],
                "put": { "summary": "Append a chunk at ?offset= (must equal the bytes held)", "security": signed,
                    "parameters": with_params(signed_params(), &[json!({"name":"offset","in":"query","required":true,"schema":integer(0)}),
                        json!({ "$ref": "#/components/parameters/Expires" })]),
                    "requestBody": { "required": true, "content": { "application/octet-stream": {
                        "schema": {"type":"string","format":"binary","minLength":1,"maxLength":cfg.max_chunk_bytes} } } },
                    "responses": responses(ok_json("{\"sha256\",\"offset\": bytes held}", None),
                        &[AUTH, &[E::MalformedBlobAddress, E::EmptyChunk, E::BodyTooLarge, E::BlobTooLarge, E::OffsetMismatch, E::BlobComplete]]) },
                "get": { "summary": "Download a complete blob; supports one Range: bytes=a-b | a- | -n", "security": signed,
                    "parameters": signed_params(),
                    "responses": responses(json!({ "200": {"description":"whole blob"}, "206": {"description":"range (at most the download cap)"} }),
                        &[AUTH, &[E::MalformedBlobAddress, E::BlobNotFound, E::RangeNotSatisfiable]]) } },
            "/v1/blobs/{sha256}/status": { "get": { "summary": "Offset held and completeness (resume point)", "security": signed,
                "parameters": with_params(signed_params(), std::slice::from_ref(&sha_param)),
                "responses": responses(ok_json("{\"sha256\",\"offset\":n,\"complete\":bool}", None), &[AUTH, &[E::MalformedBlobAddress]]) } },
            "/v1/blobs/{sha256}/complete": { "post": { "summary": "Verify SHA-256 of the held bytes; a mismatch discards the upload", "security": signed,
                "parameters": with_params(signed_params(), std::slice::from_ref(&sha_param)),
                "responses": responses(ok_json("{\"sha256\",\"size\",\"complete\":true}", None),
                    &[AUTH, &[E::MalformedBlobAddress, E::BodyTooLarge, E::HashMismatch]]) } },
            "/healthz": { "get": { "summary": "Liveness (checks the store)",
                "responses": responses(ok_json("{\"status\":\"ok\"}", None), &[&[E::StorageUnavailable]]) } },
            "/metrics": { "get": { "summary": "Prometheus text format", "responses": responses(ok_json("metrics", None), &[]) } },
            "/openapi.json": { "get": { "summary": "This document", "responses": responses(ok_json("OpenAPI", None), &[]) } }
        },
        "x-amanat-limits": { "small_body_bytes": SMALL_BODY_BYTES, "max_batch_bytes": cfg.max_batch_bytes,
            "max_download_bytes": cfg.max_download_bytes, "max_blob_bytes": cfg.max_blob_bytes }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_code_is_in_the_document() {
        let doc = document(&RelayConfig::default());
        let listed = doc["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
            .as_array()
            .unwrap()
            .clone();
        let text = doc["paths"].to_string();
        for c in ErrorCode::ALL {
            assert!(
                listed.contains(&Value::from(c.as_str())),
                "{c:?} not in the Error enum"
            );
            assert!(
                text.contains(c.as_str()),
                "{c:?} in no operation's responses"
            );
            // Listed under its own status somewhere.
            let status = c.status().as_u16().to_string();
            let under_status = doc["paths"].as_object().unwrap().values().any(|item| {
                item.as_object().unwrap().values().any(|op| {
                    op["responses"][&status]["description"]
                        .as_str()
                        .is_some_and(|d| d.split(", ").any(|x| x == c.as_str()))
                        || op["responses"]["default"]["description"]
                            .as_str()
                            .is_some_and(|d| d.split(", ").any(|x| x == c.as_str()))
                })
            });
            assert!(under_status, "{c:?} not under status {status}");
        }
        assert_eq!(listed.len(), ErrorCode::ALL.len());
    }
}
