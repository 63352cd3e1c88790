//! The `madoguchi` binary: a shim over [`madoguchi_server::cli`].

#[global_allocator]
static ALLOCATOR: madoguchi_server::Allocator = madoguchi_server::Allocator;

fn main() -> std::process::ExitCode {
    madoguchi_server::cli::main()
}
