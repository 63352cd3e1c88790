//! The `madoguchi` binary: a shim over [`madoguchi_server::cli`].

fn main() -> std::process::ExitCode {
    madoguchi_server::cli::main()
}
