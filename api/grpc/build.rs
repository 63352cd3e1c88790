//! Compiles `proto/` with protox (a pure-Rust protobuf compiler, so no
//! `protoc` is needed) and generates the tonic services and prost messages.

use std::path::PathBuf;

const PROTO_ROOT: &str = "../../proto";
const FILES: &[&str] = &[
    "madoguchi/v1/organization.proto",
    "madoguchi/v1/event.proto",
    "madoguchi/v1/platform.proto",
    "madoguchi/v1/helpdesk.proto",
    "madoguchi/v1/ticket.proto",
    "madoguchi/v1/chat.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for file in FILES {
        println!("cargo:rerun-if-changed={PROTO_ROOT}/{file}");
    }
    let descriptors = protox::compile(FILES, [PROTO_ROOT])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // Reflection serves this set; with `compile_fds` tonic does not write it.
    std::fs::write(out_dir.join("madoguchi_descriptor.bin"), prost::Message::encode_to_vec(&descriptors))?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
