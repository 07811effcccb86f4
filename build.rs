//! Build script: compiles the C numeric shim (csrc/longdouble.c) that
//! `src/util.rs` links against for Redis-exact long double arithmetic,
//! strtod() parsing and "%.17g" formatting.

fn main() {
    println!("cargo:rerun-if-changed=csrc/longdouble.c");
    println!("cargo:rerun-if-changed=build.rs");
    cc::Build::new().file("csrc/longdouble.c").opt_level(2).warnings(true).compile("darter_ld");
}
