//! The uniffi bindings generator, built from the same uniffi version as the library so the
//! generated Kotlin/Swift/Python always match the scaffolding (library mode reads the metadata
//! straight out of `libamanat_ffi.so`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
