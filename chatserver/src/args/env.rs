//! Errors about a flag whose value came from its environment variable:
//! they name the variable too, which an operator who set it in a unit
//! file may not connect with the flag.

use super::Args;

impl Args {
    /// `message`, an error that names flags, with the variable named after
    /// each flag whose value came from the environment (an operator who
    /// set `CHATSERVER_REPLAY_BYTES` in a unit file may not connect it
    /// with `--replay-bytes`).
    pub fn naming_variables(&self, message: &str) -> String {
        naming_variables(message, &self.from_env)
    }
}

/// See [`Args::naming_variables`]: `from_env` is [`Args::from_env`].
pub fn naming_variables(message: &str, from_env: &[(String, String)]) -> String {
    // `--burst` is not `--burst-bytes`: a flag ends where a name cannot go on.
    let names = |flag: &str| {
        message.match_indices(flag).any(|(at, _)| {
            !message[at + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    let came: Vec<String> = from_env
        .iter()
        .filter(|(flag, _)| names(flag))
        .map(|(flag, var)| format!("{flag} is from {var}"))
        .collect();
    match came.is_empty() {
        true => message.to_owned(),
        false => format!("{message} ({})", came.join(", ")),
    }
}

/// A bad value that came from the environment, not the command line:
/// clap names the flag (`--max-clients`), which an operator who set
/// `CHATSERVER_MAX_CLIENTS` may not connect with it, so the error says
/// which variable it was.
pub(super) fn from_env_tip(command: &clap::Command, mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::InvalidUtf8 {
        let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
        return match not_utf8(command, &argv, std::env::vars_os()) {
            Some(text) => clap::Error::raw(ErrorKind::InvalidUtf8, text).with_cmd(command),
            None => e,
        };
    }
    if e.kind() == ErrorKind::MissingRequiredArgument {
        return partner_tip(command, e);
    }
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return e;
    }
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    // `--max-clients <MAX_CLIENTS>`, or `--tls-only`.
    let flag = shown.split(' ').next().unwrap_or_default().to_owned();
    let Some(env) = env_of(command, &flag) else {
        return e;
    };
    if !on_line(&flag) {
        let tip = format!(
            "the value came from the environment variable {}",
            env.to_string_lossy()
        );
        e.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![tip.into()]),
        );
    }
    e
}

/// The environment variable of `flag` (`--max-clients`), set or not.
fn env_var_of<'a>(command: &'a clap::Command, flag: &str) -> Option<&'a std::ffi::OsStr> {
    command
        .get_arguments()
        .find(|a| a.get_long().is_some_and(|l| flag == format!("--{l}")))
        .and_then(|a| a.get_env())
}

/// The environment variable of `flag`, if it is set.
fn env_of<'a>(command: &'a clap::Command, flag: &str) -> Option<&'a std::ffi::OsStr> {
    env_var_of(command, flag).filter(|env| std::env::var_os(env).is_some())
}

/// Whether `flag` is on the command line (as the OS gave it: `args()`
/// would panic on an argument not UTF-8).
fn on_line(flag: &str) -> bool {
    std::env::args_os().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == flag
            || a.strip_prefix(flag)
                .is_some_and(|rest| rest.starts_with('='))
    })
}

/// The flags that need each other (`requires` both ways).
const PARTNERS: [(&str, &str); 1] = [("--tls-cert", "--tls-key")];

/// A flag missing because its partner was given: when the partner came
/// from the environment, say which variable set it (clap names only
/// `--tls-cert`, to an operator who set `CHATSERVER_TLS_KEY` and no flag
/// at all) and the missing one's variable.
fn partner_tip(command: &clap::Command, mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::Strings(missing)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    let mut tips = Vec::new();
    for shown in missing {
        let flag = shown.split(' ').next().unwrap_or_default();
        let Some(partner) = PARTNERS
            .iter()
            .find_map(|&(a, b)| (a == flag).then_some(b).or((b == flag).then_some(a)))
        else {
            continue;
        };
        let Some(env) = env_of(command, partner).filter(|_| !on_line(partner)) else {
            continue;
        };
        let its_env = env_var_of(command, flag)
            .map(|v| format!(" (or {})", v.to_string_lossy()))
            .unwrap_or_default();
        tips.push(format!(
            "{partner} came from the environment variable {}: give {flag}{its_env} too, or unset it",
            env.to_string_lossy()
        ));
    }
    if !tips.is_empty() {
        let tips = tips.into_iter().map(Into::into).collect();
        e.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
    }
    e
}

/// clap says only "invalid UTF-8 was detected in one or more arguments",
/// also when the bytes came from a flag's environment variable: then
/// the words naming it (each, when several are), if no argument on the
/// command line is at fault. `None` when one is, or no such variable is
/// set.
fn not_utf8(
    cmd: &clap::Command,
    argv: &[std::ffi::OsString],
    vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Option<String> {
    use clap::parser::ValueSource;
    if argv.iter().any(|a| a.to_str().is_none()) {
        return None;
    }
    let vars: Vec<(std::ffi::OsString, std::ffi::OsString)> =
        vars.filter(|(_, v)| v.to_str().is_none()).collect();
    // The flags whose variable holds such bytes, but for a path (any
    // bytes make one).
    let any_bytes = |a: &clap::Arg| {
        let of = a.get_value_parser().type_id();
        of == std::any::TypeId::of::<std::path::PathBuf>()
            || of == std::any::TypeId::of::<std::ffi::OsString>()
    };
    let mut bad: Vec<(clap::Id, String)> = cmd
        .get_arguments()
        .filter(|a| !any_bytes(a))
        .filter_map(|a| {
            let var = a.get_env()?;
            vars.iter()
                .any(|(k, _)| k == var)
                .then(|| (a.get_id().clone(), var.to_string_lossy().into_owned()))
        })
        .collect();
    // Not those given on the command line: clap did not read their variable.
    let mut without = cmd.clone();
    for (id, _) in &bad {
        without = without.mut_arg(id.clone(), |a| a.env(None));
    }
    if let Ok(matches) = without.try_get_matches_from(argv) {
        bad.retain(|(id, _)| matches.value_source(id.as_str()) != Some(ValueSource::CommandLine));
    }
    let mut bad: Vec<String> = bad.into_iter().map(|(_, var)| var).collect();
    if bad.is_empty() {
        return None;
    }
    bad.sort();
    let (what, is) = match bad.len() {
        1 => ("variable", "is"),
        _ => ("variables", "are"),
    };
    Some(format!(
        "the environment {what} {} {is} not valid UTF-8\n",
        bad.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_the_variables_its_flags_came_from() {
        let from_env = [
            ("--burst".to_owned(), "CHATSERVER_BURST".to_owned()),
            ("--listen".to_owned(), "CHATSERVER_LISTEN".to_owned()),
        ];
        assert_eq!(
            naming_variables("--burst-bytes 9 is less than one frame", &from_env),
            "--burst-bytes 9 is less than one frame"
        );
        assert_eq!(
            naming_variables("choose another port with --listen (port 0)", &from_env),
            "choose another port with --listen (port 0) (--listen is from CHATSERVER_LISTEN)"
        );
        assert_eq!(
            naming_variables("--burst 0 and --listen", &from_env),
            "--burst 0 and --listen (--burst is from CHATSERVER_BURST, --listen is from CHATSERVER_LISTEN)"
        );
    }

    #[test]
    #[cfg(unix)]
    fn a_variable_not_utf8_is_named() {
        use clap::CommandFactory;
        use std::os::unix::ffi::OsStringExt;
        let cmd = Args::command();
        let os = |s: &str| std::ffi::OsString::from(s);
        let bad = || std::ffi::OsString::from_vec(vec![b'a', 0xff]);
        let vars = || {
            vec![
                (os("CHATSERVER_LISTEN"), bad()),
                (os("CHATSERVER_UNKNOWN"), bad()),
                (os("HOME"), bad()),
                (os("CHATSERVER_NODE"), os("ok")),
                // A path may be any bytes.
                (os("CHATSERVER_DATA_DIR"), bad()),
            ]
            .into_iter()
        };
        assert_eq!(
            not_utf8(&cmd, &[os("chatserver")], vars()).as_deref(),
            Some("the environment variable CHATSERVER_LISTEN is not valid UTF-8\n")
        );
        // Given on the command line, the variable was not read.
        let given = [os("chatserver"), os("--listen"), os("127.0.0.1:1")];
        assert_eq!(not_utf8(&cmd, &given, vars()), None);
        // The command line's own bytes: clap's words stand.
        assert_eq!(not_utf8(&cmd, &[os("chatserver"), bad()], vars()), None);
        assert_eq!(
            not_utf8(&cmd, &[os("chatserver")], std::iter::empty()),
            None
        );
    }
}
