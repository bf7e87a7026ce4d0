//! netaug-analysis: reads run outputs (summary.json, metrics.jsonl) with polars and writes
//! paper-style tables and plotters figures. It reads files only, never trainer types, so
//! reports work on results copied from a cluster.
//!
//! Nothing here yet: the sweeps-and-reports issue builds it.
