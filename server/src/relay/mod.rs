//! The sync relay (`amanat serve`): stores and forwards what devices push, seeing only ciphertext
//! and routing metadata. The protocol is documented in `docs/PROTOCOL.md`; the OpenAPI document is
//! served at `/openapi.json`.
//!
//! Pieces, lowest first (a piece imports only pieces of a lower row; server/tests/relay_layers.rs
//! checks it):
//!
//! | row | pieces | role |
//! |---|---|---|
//! | 0 | [`config`], [`storage`], [`metrics`], [`validate`] | limits; the storage contract; counters; strict field parsers and their OpenAPI patterns |
//! | 1 | [`errors`], [`migrations`] | the one error-code enum and JSON error answer; versioned schema |
//! | 2 | [`sqlite`], [`postgres`], [`openapi`] | the two backends; the document |
//! | 3 | [`state`] | shared state of a process, rate buckets |
//! | 4 | [`auth`] | request authentication |
//! | 5 | [`handlers`] | the endpoints |
//! | 6 | [`router`] | routes, JSON shape of framework refusals, request log, serving loop |

pub mod auth;
pub mod config;
pub mod errors;
pub mod handlers;
pub mod metrics;
pub mod migrations;
pub mod openapi;
pub mod postgres;
pub mod router;
pub mod sqlite;
pub mod state;
pub mod storage;
pub mod validate;

pub use config::RelayConfig;
pub use errors::{ApiError, ErrorCode};
pub use router::{router, start, RunningRelay};
pub use state::{now_ms, App};
