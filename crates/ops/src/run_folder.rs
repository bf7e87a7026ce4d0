//! The run folder a saved network belongs to: its config gives the defaults of the
//! operations that read a saved net (eval, export, detect).

use std::path::Path;

use netaug_trainer::RunConfig;
use netaug_trainer::layout::CONFIG_FILE;

/// The config of the run folder that holds `dir` (a checkpoint or exported net inside it).
pub fn run_config_of(dir: &Path) -> Result<Option<RunConfig>, netaug_trainer::ConfigError> {
    dir.ancestors()
        .map(|d| d.join(CONFIG_FILE))
        .find(|p| p.is_file())
        .map(|p| RunConfig::load(&p, &[]))
        .transpose()
}
