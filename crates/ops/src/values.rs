//! Value parsers for arguments whose choices `--help` and shell completions list:
//! `--device` (a backend, with an optional GPU index) and `--dataset`.

use std::ffi::OsStr;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use netaug_trainer::backend::{DEVICES, DeviceName};

/// `--device`: `cpu`, `tch-cpu`, `tch-cuda[:N]`, `cuda[:N]`. The four names are its
/// possible values (help, completions); a GPU index after a colon is accepted too.
#[derive(Clone, Copy, Debug)]
pub struct DeviceParser;

impl TypedValueParser for DeviceParser {
    type Value = DeviceName;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<DeviceName, clap::Error> {
        let text = value.to_string_lossy();
        text.parse().map_err(|why: String| {
            let arg = arg.map_or_else(|| "--device".into(), |a| a.to_string());
            clap::Error::raw(
                ErrorKind::InvalidValue,
                format!("invalid value '{text}' for '{arg}': {why}\n"),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(DEVICES.iter().map(PossibleValue::new)))
    }
}

/// `--dataset` of the classification commands: one of the known dataset names.
pub fn dataset() -> PossibleValuesParser {
    PossibleValuesParser::new(netaug_data::dataset::KNOWN)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[arg(long, default_value = "cpu", value_parser = DeviceParser)]
        device: DeviceName,
        #[arg(long, value_parser = dataset())]
        dataset: Option<String>,
    }

    #[test]
    fn devices_with_an_index_parse_and_help_lists_the_names() {
        let cli = Cli::try_parse_from(["x", "--device", "cuda:1", "--dataset", "pets"]).unwrap();
        assert_eq!(cli.device.to_string(), "cuda:1");
        assert_eq!(cli.dataset.as_deref(), Some("pets"));
        let err = Cli::try_parse_from(["x", "--device", "gpu"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        let err = Cli::try_parse_from(["x", "--dataset", "imagenet"]).unwrap_err();
        assert!(err.to_string().contains("food101"), "{err}");
        let help = <Cli as clap::CommandFactory>::command()
            .render_help()
            .to_string();
        assert!(
            help.contains("possible values: cpu, tch-cpu, tch-cuda, cuda"),
            "{help}"
        );
        assert!(help.contains("fashion-mnist"), "{help}");
    }
}
