//! amanat-server: the sync relay (`amanat serve`) and the HQ operations of the `amanat` tool
//! (`org init`, `device enroll`, `device revoke`), as a library so that tests and benchmarks drive
//! the same code the binary runs.

pub mod backup;
pub mod console;
pub mod hq;
pub mod org;
pub mod relay;
pub mod serve;
