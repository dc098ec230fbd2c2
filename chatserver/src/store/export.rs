//! `chatserver export`: a database's history printed as JSON lines, a
//! page at a time, each page read in a transaction of its own.

use std::path::Path;

use chatstore::Store;

/// `export --room`: `#rust` as chatclient's `/join` takes it, and worded
/// so (chatproto's own text is for frames, which carry no `#`).
pub fn export_room(raw: &str) -> Result<String, String> {
    let name = raw.strip_prefix('#').unwrap_or(raw);
    chatproto::room_name(name).map_err(|_| {
        format!(
            "--room: not a room name: {}; a room is 1 to {} of a-z 0-9 - _ ., starting with a letter or digit, as in #rust",
            chatproto::escape_control(raw),
            chatproto::MAX_ROOM_LEN
        )
    })
}

/// What an export stops with when what reads its lines closed (`chatserver
/// export | head`): not a failure, as for any tool in a pipe.
pub const READER_GONE: &str = "the export's reader closed the pipe";

/// A failed write of an export's lines, as the export stops with it.
pub fn write_failed(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => READER_GONE.to_owned(),
        _ => format!("cannot write the export: {e}"),
    }
}

/// Print history as JSON lines, one `msg` object per line as on the wire
/// (with the sender's id), room by room in seq order.
pub fn export(dir: &Path, room: Option<&str>, since: u64) -> Result<(), String> {
    use std::io::Write;
    let store = Store::open_read_only(dir).map_err(|e| e.to_string())?;
    let rooms = store.rooms().map_err(|e| e.to_string())?;
    let names: Vec<String> = match room {
        Some(r) => {
            let canonical = export_room(r)?;
            if !rooms.iter().any(|x| x.name == canonical) {
                return Err(format!("no room #{canonical} in {}", dir.display()));
            }
            vec![canonical]
        }
        None => rooms.into_iter().map(|r| r.name).collect(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for name in names {
        // A page is written once it is read, its read transaction ended:
        // a reader that pauses (`| less`) holds no snapshot that would
        // keep the server's checkpoints from emptying the log.
        for page in store.export(&name, since) {
            for e in page.map_err(|e| e.to_string())? {
                let line = serde_json::to_string(&e.wire(true, false))
                    .map_err(|e| format!("cannot write the export: {e}"))?;
                writeln!(out, "{line}").map_err(|e| write_failed(&e))?;
            }
        }
    }
    out.flush().map_err(|e| write_failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_room_takes_a_hash_and_does_not_say_otherwise() {
        assert_eq!(export_room("#Rust").unwrap(), "rust");
        assert_eq!(export_room("lobby").unwrap(), "lobby");
        let err = export_room("Bad Room").unwrap_err();
        assert!(err.contains("not a room name: Bad Room"), "{err}");
        assert!(
            err.contains("as in #rust") && !err.contains("no #"),
            "{err}"
        );
    }
}
