//! Thin: the command line lives in the library's private `cli` module.

fn main() {
    std::process::exit(goneaway::cli_main());
}
