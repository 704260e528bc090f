//! Link the component with a 256 KiB shadow stack instead of rustc's 1 MiB
//! default for wasm32. The stack sits at the start of linear memory, and Spin
//! 3.6's pooling allocator zeroes up to 2 MiB of an instance's memory
//! (`linear_memory_keep_resident`) when the instance ends and keeps it
//! resident, so every request paid for clearing, and every pool slot held,
//! a stack the API never comes near: its deepest recursion is JSON parsing,
//! bounded by serde_json at 128 levels.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=262144");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
