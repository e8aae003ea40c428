//! The OpenAPI 3.0 document served at `/openapi.json`, written by hand (a generator crate would
//! cost more build time than this file). `docs/PROTOCOL.md` is the prose reference.

use serde_json::{json, Value};

fn err(desc: &str) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn signed() -> Value {
    json!([{ "deviceSignature": [] }])
}

/// The document.
pub fn document() -> Value {
    let auth_errors = json!({
        "400": err("malformed_auth, malformed_body, malformed_query, ..."),
        "401": err("unsigned_request, unknown_device, bad_signature, stale_timestamp, replayed_nonce"),
        "403": err("revoked_device (with the org-signed `revocation`)"),
        "413": err("body_too_large, envelope_too_large, batch_too_large"),
        "429": err("rate_limited"),
        "503": err("storage_unavailable")
    });
    let with = |extra: Value| {
        let mut r = auth_errors.clone();
        if let (Some(r), Some(e)) = (r.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                r.insert(k.clone(), v.clone());
            }
        }
        r
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Amanat sync relay",
            "version": "1",
            "description": "Stores and forwards device ciphertext. Every /v1 request except POST /v1/revocations is signed by the device key: see docs/PROTOCOL.md and amanat_protocol."
        },
        "components": {
            "securitySchemes": {
                "deviceSignature": { "type": "apiKey", "in": "header", "name": "x-amanat-signature",
                    "description": "Ed25519 over AMANAT-REQUEST-V1\\nMETHOD\\nPATH?QUERY\\nTIMESTAMP_MS\\nNONCE\\nSHA256(body); with x-amanat-device, x-amanat-timestamp, x-amanat-nonce" }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } },
                "EnrollmentCode": { "type": "object", "required": ["code_id","org_fingerprint","expires_at","role","signature"],
                    "properties": { "code_id": {"type":"string"}, "org_fingerprint": {"type":"string"}, "expires_at": {"type":"integer"}, "role": {"type":"string","enum":["field","hq"]}, "signature": {"type":"string"} } },
                "EnrollRequest": { "type": "object", "required": ["code","signing_public_key","age_recipient"],
                    "properties": { "code": {"$ref":"#/components/schemas/EnrollmentCode"}, "signing_public_key": {"type":"string"}, "age_recipient": {"type":"string"} } },
                "Revocation": { "type": "object", "required": ["device_id","org_fingerprint","revoked_at","signature"],
                    "properties": { "device_id": {"type":"string"}, "org_fingerprint": {"type":"string"}, "revoked_at": {"type":"integer"}, "signature": {"type":"string"} } },
                "Envelope": { "type": "object", "required": ["id","recipients","payload"],
                    "properties": { "id": {"type":"string","format":"uuid"}, "recipients": {"type":"array","items":{"type":"string"}}, "payload": {"type":"string","format":"byte"} } },
                "PushRequest": { "type": "object", "required": ["envelopes"], "properties": { "envelopes": {"type":"array","items":{"$ref":"#/components/schemas/Envelope"}} } },
                "PushResponse": { "type": "object", "properties": { "acks": {"type":"array","items":{"type":"object","properties":{"id":{"type":"string"},"seq":{"type":"integer"},"duplicate":{"type":"boolean"}}}} } },
                "PullResponse": { "type": "object", "properties": {
                    "envelopes": {"type":"array","items":{"type":"object","properties":{"seq":{"type":"integer"},"id":{"type":"string"},"sender":{"type":"string"},"payload":{"type":"string","format":"byte"}}}},
                    "next_after": {"type":"integer"}, "more": {"type":"boolean"} } }
            }
        },
        "paths": {
            "/v1/enroll": { "post": { "summary": "Enroll a device with a one-time org-signed code (request signed by the new device key)",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/EnrollRequest" } } } },
                "responses": with(json!({ "200": {"description":"enrolled; returns device_id, role and org.pub"},
                    "403": err("invalid_org_signature, wrong_organisation"), "409": err("code_used, already_enrolled"), "410": err("code_expired") })) } },
            "/v1/revocations": {
                "post": { "summary": "Revoke a device (org-signed; no device signature needed)",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Revocation" } } } },
                    "responses": { "200": {"description":"revoked"}, "400": err("malformed_body"), "403": err("invalid_org_signature, wrong_organisation"), "404": err("unknown_device") } },
                "get": { "summary": "All org-signed revocations", "security": signed(), "responses": with(json!({ "200": {"description":"{\"revocations\":[...]}"} })) } },
            "/v1/envelopes": {
                "post": { "summary": "Push a batch (atomic, idempotent by envelope id)", "security": signed(),
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/PushRequest" } } } },
                    "responses": with(json!({ "200": { "description": "acknowledged after commit", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/PushResponse" } } } }, "409": err("envelope_id_conflict") })) },
                "get": { "summary": "Pull envelopes routed to the caller after a cursor", "security": signed(),
                    "parameters": [ {"name":"after","in":"query","schema":{"type":"integer"}}, {"name":"limit","in":"query","schema":{"type":"integer"}} ],
                    "responses": with(json!({ "200": { "description": "a page", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/PullResponse" } } } } })) } },
            "/v1/blobs/{sha256}": {
                "parameters": [ {"name":"sha256","in":"path","required":true,"schema":{"type":"string"}} ],
                "put": { "summary": "Append a chunk at ?offset= (must equal the bytes held)", "security": signed(),
                    "parameters": [ {"name":"offset","in":"query","required":true,"schema":{"type":"integer"}} ],
                    "requestBody": { "required": true, "content": { "application/octet-stream": {} } },
                    "responses": with(json!({ "200": {"description":"{\"offset\": held}"}, "409": err("offset_mismatch (with offset), blob_complete") })) },
                "get": { "summary": "Download a complete blob; supports Range: bytes=", "security": signed(),
                    "responses": with(json!({ "200": {"description":"whole blob"}, "206": {"description":"range"}, "404": err("blob_not_found"), "416": err("range_not_satisfiable") })) } },
            "/v1/blobs/{sha256}/status": { "get": { "summary": "Offset held and completeness (resume point)", "security": signed(),
                "parameters": [ {"name":"sha256","in":"path","required":true,"schema":{"type":"string"}} ],
                "responses": with(json!({ "200": {"description":"{\"offset\":n,\"complete\":bool}"} })) } },
            "/v1/blobs/{sha256}/complete": { "post": { "summary": "Verify SHA-256 of the held bytes; a mismatch discards the upload", "security": signed(),
                "parameters": [ {"name":"sha256","in":"path","required":true,"schema":{"type":"string"}} ],
                "responses": with(json!({ "200": {"description":"complete"}, "422": err("hash_mismatch") })) } },
            "/healthz": { "get": { "summary": "Liveness (checks the store)", "responses": { "200": {"description":"ok"}, "503": err("storage_unavailable") } } },
            "/metrics": { "get": { "summary": "Prometheus text format", "responses": { "200": {"description":"metrics"} } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": {"description":"OpenAPI"} } } }
        }
    })
}
