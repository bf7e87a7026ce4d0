//! With `--features tch`: compiles cpp/aten.cpp against the libtorch that torch-sys found
//! (its lib folder comes as DEP_TCH_LIBTORCH_LIB; the headers sit next to it).

fn main() {
    #[cfg(feature = "tch")]
    aten();
}

#[cfg(feature = "tch")]
fn aten() {
    println!("cargo:rerun-if-changed=cpp/aten.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let lib = std::path::PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch-sys reports the libtorch lib folder (DEP_TCH_LIBTORCH_LIB)"),
    );
    let root = lib.parent().expect("libtorch lib folder has a parent");
    // PyTorch 2.x wheels and libtorch builds use the new C++ ABI (torch-sys's default too).
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .file("cpp/aten.cpp")
        .compile("netaug_aten");
}
