//! kingpin's argument files, which statsd_exporter's command line takes: an argument `@path` stands for
//! the arguments in the file at `path`, one per line (blank lines and lines starting with `#` skipped,
//! the rest taken whole, spaces included), expanded where they stand, files named inside a file
//! expanded in turn. Arguments after `--`, and a value joined to its flag (`--flag=@x`), are left as
//! they are — so an abstract unixgram socket is `--statsd.listen-unixgram=@name` in both.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt as _;

/// Expansions at most: a file that names itself would otherwise never end (kingpin loops forever).
const MAX_EXPANSIONS: usize = 1000;

/// `args` (the program name first) with every argument file expanded.
pub fn expand(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>, String> {
    let mut pending: Vec<OsString> = args.into_iter().collect();
    pending.reverse();
    let mut out = Vec::with_capacity(pending.len());
    let mut expansions = 0;
    let mut literal = false;
    while let Some(arg) = pending.pop() {
        let bytes = arg.as_bytes();
        if literal || out.is_empty() {
            out.push(arg);
            continue;
        }
        if bytes == b"--" {
            literal = true;
            out.push(arg);
            continue;
        }
        let Some(path) = bytes.strip_prefix(b"@") else {
            out.push(arg);
            continue;
        };
        if path.is_empty() {
            return Err("expected @ file to expand arguments from".into());
        }
        expansions += 1;
        if expansions > MAX_EXPANSIONS {
            return Err(format!(
                "more than {MAX_EXPANSIONS} argument files expanded (a file that names itself?)"
            ));
        }
        let path = OsStr::from_bytes(path);
        let text = std::fs::read(path).map_err(|e| {
            format!(
                "failed to open arguments file {:?}: {e}",
                path.to_string_lossy()
            )
        })?;
        let lines: Vec<OsString> = text
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.starts_with(b"#") && !line.trim_ascii().is_empty())
            .map(|line| OsStr::from_bytes(line).to_os_string())
            .collect();
        pending.extend(lines.into_iter().rev());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn files_expand_where_they_stand_and_inside_each_other() {
        let dir =
            std::env::temp_dir().join(format!("statsd-proxy-argfiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let inner = dir.join("inner");
        std::fs::write(&inner, "--log.level=debug\n").unwrap();
        let outer = dir.join("outer");
        std::fs::write(
            &outer,
            format!(
                "# the listeners\n--statsd.listen-udp=:9125\n\n  \n--web.listen-address\n:9102 \r\n@{}\n",
                inner.display()
            ),
        )
        .unwrap();
        let args = ["statsd-proxy", "--check-config"]
            .iter()
            .map(OsString::from)
            .chain([OsString::from(format!("@{}", outer.display()))])
            .chain(["--statsd.listen-unixgram=@abstract", "--", "@kept"].map(OsString::from));
        assert_eq!(
            strings(&expand(args).unwrap()),
            [
                "statsd-proxy",
                "--check-config",
                "--statsd.listen-udp=:9125",
                "--web.listen-address",
                ":9102 ",
                "--log.level=debug",
                "--statsd.listen-unixgram=@abstract",
                "--",
                "@kept"
            ]
        );
        // A file naming itself ends with an error, not a hang.
        let selfish = dir.join("selfish");
        std::fs::write(&selfish, format!("@{}\n", selfish.display())).unwrap();
        let args = [
            "statsd-proxy".into(),
            OsString::from(format!("@{}", selfish.display())),
        ];
        assert!(expand(args).unwrap_err().contains("names itself"));
        let args = ["statsd-proxy", "@/nonexistent/args"].map(OsString::from);
        assert!(
            expand(args)
                .unwrap_err()
                .contains("failed to open arguments file")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
