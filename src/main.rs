//! Thin: the command line lives in the library's `cli` module.

fn main() {
    std::process::exit(goneaway::cli::main());
}
