//! Reading the flags: from the command line and the environment (a blank
//! `CHATSERVER_*` variable unset first), noting which were given, and
//! empty values tidied away.

use super::env::from_env_tip;
use super::Args;

impl Args {
    /// [`Parser::parse`](clap::Parser::parse), noting whether the
    /// retention limits were given (a cluster node applies them to the
    /// rooms made before only then).
    /// A `CHATSERVER_*` variable set to nothing (a blank line of an
    /// environment file) counts as not given, whatever its setting: it is
    /// unset first. Call it before any other thread starts.
    pub fn parse_noting_given() -> Args {
        use clap::parser::ValueSource;
        use clap::{CommandFactory, FromArgMatches};
        let blank: Vec<std::ffi::OsString> = std::env::vars_os()
            .filter(|(k, v)| {
                k.to_str().is_some_and(|k| k.starts_with("CHATSERVER_"))
                    && v.to_str().is_some_and(|v| v.trim().is_empty())
            })
            .map(|(k, _)| k)
            .collect();
        for k in blank {
            std::env::remove_var(k);
        }
        // `--rate -1` is a bad value for --rate, not an unknown flag `-1`.
        let negative = |a: clap::Arg| {
            let takes = a.get_action().takes_values();
            a.allow_negative_numbers(takes)
        };
        let mut command = Args::command()
            .mut_args(negative)
            .mut_subcommand("export", |c| c.mut_args(negative));
        let matches = command
            .try_get_matches_from_mut(std::env::args_os())
            .unwrap_or_else(|e| from_env_tip(&command, e).exit());
        let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let given = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        args.retention_given = (given("history_max_messages"), given("history_max_age_days"));
        // `export --data-dir DIR` on a machine whose environment makes it
        // a node (CHATSERVER_CLUSTER) reads DIR, as it says.
        let on_line = |id: &str| matches!(matches.value_source(id), Some(ValueSource::CommandLine));
        args.export_cluster = on_line("cluster") || (given("cluster") && !on_line("data_dir"));
        args.export_both = on_line("cluster") && on_line("data_dir");
        args.data_dir_given = given("data_dir");
        args.store_given = given("store");
        args.sync_given = given("sync");
        args.disk_only_given = (given("store_max_mib"), given("history_prune_every_secs"));
        args.cluster_only_given = [
            ("cluster_replicas", "--cluster-replicas"),
            ("node_dead_after_ms", "--node-dead-after-ms"),
        ]
        .into_iter()
        .filter_map(|(id, flag)| given(id).then_some(flag))
        .collect();
        args.rate_only_given = [
            ("burst", "--burst"),
            ("rate_bytes", "--rate-bytes"),
            ("burst_bytes", "--burst-bytes"),
            ("read_rate_bytes", "--read-rate-bytes"),
            ("read_burst_bytes", "--read-burst-bytes"),
            ("rate_limit_grace_ms", "--rate-limit-grace-ms"),
        ]
        .into_iter()
        .filter_map(|(id, flag)| given(id).then_some(flag))
        .collect();
        args.from_env = command
            .get_arguments()
            .filter(|a| {
                matches!(
                    matches.value_source(a.get_id().as_str()),
                    Some(ValueSource::EnvVariable)
                )
            })
            .filter_map(|a| {
                let long = a.get_long()?;
                let var = a.get_env()?.to_string_lossy().into_owned();
                Some((format!("--{long}"), var))
            })
            .collect();
        args
    }

    /// An empty `--cluster ""` or `--node ""` on the command line counts
    /// as not given: it must not switch cluster mode on (blank variables
    /// are unset before parsing, see [`Args::parse_noting_given`]).
    pub fn tidy(&mut self) {
        self.cluster.retain(|url| !url.trim().is_empty());
        if self.node.as_deref().is_some_and(|n| n.trim().is_empty()) {
            self.node = None;
        }
    }
}
