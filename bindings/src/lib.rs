//! Amanat FFI layer (being built).
