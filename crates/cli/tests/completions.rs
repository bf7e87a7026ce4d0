//! `netaug completions`: scripts for each shell that list the subcommands and the choices
//! of `--device` and `--dataset`.

mod common;

use common::netaug;

#[test]
fn completion_scripts_list_commands_devices_and_datasets() {
    for (shell, marker) in [
        ("bash", "_netaug()"),
        ("zsh", "#compdef netaug"),
        ("fish", "complete -c netaug"),
    ] {
        let out = netaug().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: no {marker}");
        for word in [
            "sweep",
            "completions",
            "tch-cuda",
            "fashion-mnist",
            "cub200",
        ] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    let out = netaug().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = netaug().args(["eval", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("possible values: cpu, tch-cpu, tch-cuda, cuda")
            && help.contains("folder, food101, flowers102, cars, cub200, pets, fashion-mnist"),
        "{help}"
    );
}
