//! The run folder a saved network belongs to: its config gives the defaults of the
//! operations that read a saved net (eval, export, detect).

use std::path::{Path, PathBuf};

use netaug_trainer::RunConfig;
use netaug_trainer::checkpoint::resolve_net;
use netaug_trainer::layout::CONFIG_FILE;

use crate::OpsError;

/// The config of the run folder that holds `dir` (a checkpoint or exported net inside it).
fn run_config_of(dir: &Path) -> Result<Option<RunConfig>, netaug_trainer::ConfigError> {
    dir.ancestors()
        .map(|d| d.join(CONFIG_FILE))
        .find(|p| p.is_file())
        .map(|p| RunConfig::load(&p, &[]))
        .transpose()
}

/// The net folder `checkpoint` names (a run, checkpoint or exported-net folder) and the
/// config of the run that holds it, if any. A run config that cannot be read is an error:
/// the defaults it would give (resolution, task) must not be guessed.
pub(crate) fn locate(checkpoint: &Path) -> Result<(PathBuf, Option<RunConfig>), OpsError> {
    let dir = resolve_net(checkpoint)?;
    let config = run_config_of(&dir).map_err(netaug_trainer::TrainError::from)?;
    Ok((dir, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_net_in_a_run_whose_config_is_broken_is_refused_not_read_with_guessed_defaults() {
        let dir = std::env::temp_dir().join(format!("netaug-ops-locate-{}", std::process::id()));
        let net = dir.join("exported");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join(netaug_model::net::MODEL_JSON), "{}").unwrap();
        // Outside any run folder: the net alone.
        let (found, config) = locate(&dir).unwrap();
        assert_eq!((found, config.is_none()), (net.clone(), true));
        std::fs::write(dir.join(CONFIG_FILE), "data: [unclosed").unwrap();
        let err = locate(&dir).unwrap_err();
        assert!(err.is_input(), "{err}");
        assert!(err.to_string().contains(CONFIG_FILE), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
