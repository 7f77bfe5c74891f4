fn main() {
    // `generate_context!` embeds the kiosk's built front end. Building the
    // crate must not need Node, so a missing build gets a placeholder page
    // that says how to build the real one.
    let dist = std::path::Path::new("../ui/dist/kiosk");
    if !dist.join("index.html").exists() {
        let _ = std::fs::create_dir_all(dist);
        let _ = std::fs::write(
            dist.join("index.html"),
            "<!doctype html><title>Entrada Gate</title><p>The kiosk UI is not built: run <code>npm ci &amp;&amp; npm run build</code> in <code>ui/</code>.</p>",
        );
        println!("cargo:warning=ui/dist/kiosk not built; embedding a placeholder page");
    }
    println!("cargo:rerun-if-changed=../ui/dist/kiosk");
    tauri_build::build()
}
