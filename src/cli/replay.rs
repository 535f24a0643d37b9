//! `ceph-msgr replay`: run an event script and write each connection's bytes.

use std::path::PathBuf;

use ceph_msgr::replay;

/// Runs the subcommand.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut script = None;
    let mut out = None;
    let mut quiet = false;
    let mut protocol = replay::Protocol::V1;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(it.next().ok_or("--out needs a directory")?)),
            "--quiet" | "-q" => quiet = true,
            "--protocol" => {
                protocol = it.next().ok_or("--protocol needs v1 or v2")?.parse()?;
            }
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
            s if script.is_none() => script = Some(PathBuf::from(s)),
            s => return Err(format!("unexpected argument `{s}`")),
        }
    }
    let script = script.ok_or("replay needs a SCRIPT")?;
    let out = out.ok_or("replay needs --out DIR")?;
    let text = std::fs::read_to_string(&script)
        .map_err(|e| format!("cannot read {}: {e}", script.display()))?;
    let events = replay::parse(&text).map_err(|e| format!("{}: {e}", script.display()))?;
    let outcome = replay::run_protocol(&events, protocol);
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    // Files of an earlier run with more connections would be mistaken for this run's.
    for entry in
        std::fs::read_dir(&out).map_err(|e| format!("cannot read {}: {e}", out.display()))?
    {
        let p = entry.map_err(|e| e.to_string())?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let numbered = name
            .strip_prefix("conn-")
            .and_then(|r| r.strip_suffix(".bin"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if numbered {
            std::fs::remove_file(&p).map_err(|e| format!("cannot remove {}: {e}", p.display()))?;
        }
    }
    for (i, bytes) in outcome.connections.iter().enumerate() {
        let p = out.join(format!("conn-{i}.bin"));
        std::fs::write(&p, bytes).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    if !quiet {
        print_summary(&script, &events, &outcome);
    }
    Ok(())
}

fn print_summary(script: &std::path::Path, events: &[replay::Event], o: &replay::Outcome) {
    outln!(
        "replayed {} ({}): {} events, {} messages, {} connection(s)",
        script.display(),
        o.protocol,
        events.len(),
        o.messages.len(),
        o.connections.len()
    );
    for (i, c) in o.connections.iter().enumerate() {
        outln!("  conn-{i}.bin  {:>10} bytes", c.len());
    }
    outln!();
    outln!(
        "  {:>6}  {:>5}  {:>10}  {:<28}  fate",
        "id",
        "seq",
        "frame",
        "bytes written (conn:bytes)"
    );
    for m in &o.messages {
        let seq = m.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let written = if m.written.is_empty() {
            "0".to_owned()
        } else {
            m.written
                .iter()
                .map(|(c, b)| format!("c{c}:{b}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        outln!(
            "  {:>6}  {:>5}  {:>10}  {:<28}  {}",
            m.id,
            seq,
            m.frame_len,
            written,
            m.fate
        );
    }
}
