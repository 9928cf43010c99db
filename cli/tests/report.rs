//! The findings report: the timeline pictures and the whole HTML page are well-formed XML (a
//! small checker below), the pictures show what they claim (lanes, lock bars, callbacks, errnos,
//! findings), every matrix cell links to a finding with a reproducer that replays, and the
//! command writes its files.

use ftsim_cli::report::{self, esc, timeline_svg, ReportConfig};
use ftsim_core::property::Property;
use ftsim_core::protocol::Protocol;
use ftsim_drive::script::Script;
use ftsim_sim::sweep::{SeedSet, Target};
use std::path::PathBuf;
use std::process::Command;

/// A parsed element: its name, attributes and children (text is checked, then dropped).
#[derive(Debug)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<El>,
}

impl El {
    fn walk<'a>(&'a self, out: &mut Vec<&'a El>) {
        out.push(self);
        for c in &self.children {
            c.walk(out);
        }
    }
    fn all(&self) -> Vec<&El> {
        let mut v = Vec::new();
        self.walk(&mut v);
        v
    }
    fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }
}

fn check_text(t: &str) -> Result<(), String> {
    if t.contains('<') {
        return Err(format!("raw `<` in text: {t:?}"));
    }
    let mut rest = t;
    while let Some(i) = rest.find('&') {
        let tail = &rest[i + 1..];
        let end = tail
            .find(';')
            .ok_or_else(|| format!("unterminated entity in {t:?}"))?;
        let name = &tail[..end];
        let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
            || (name.starts_with("#x") && u32::from_str_radix(&name[2..], 16).is_ok())
            || (name.starts_with('#') && name[1..].parse::<u32>().is_ok());
        if !ok {
            return Err(format!("unknown entity &{name}; in {t:?}"));
        }
        rest = &tail[end + 1..];
    }
    Ok(())
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
}

/// Parses a well-formed XML document (an optional prolog, DOCTYPE and comments, one root).
fn parse_xml(doc: &str) -> Result<El, String> {
    let mut stack: Vec<El> = vec![El {
        name: "#document".into(),
        attrs: vec![],
        children: vec![],
    }];
    let mut i = 0;
    let b = doc.as_bytes();
    while i < b.len() {
        if b[i] != b'<' {
            let end = doc[i..].find('<').map_or(doc.len(), |j| i + j);
            let text = &doc[i..end];
            if stack.len() == 1 && !text.trim().is_empty() {
                return Err(format!("text outside the root: {text:?}"));
            }
            check_text(text)?;
            i = end;
            continue;
        }
        let rest = &doc[i..];
        if rest.starts_with("<!--") {
            let end = rest.find("-->").ok_or("unterminated comment")?;
            i += end + 3;
            continue;
        }
        if rest.starts_with("<!DOCTYPE") || rest.starts_with("<?") {
            let end = rest.find('>').ok_or("unterminated declaration")?;
            i += end + 1;
            continue;
        }
        // A tag: find its end outside quoted attribute values.
        let mut j = 1;
        let mut quote: Option<u8> = None;
        while j < rest.len() {
            let c = rest.as_bytes()[j];
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None if c == b'>' => break,
                None if c == b'<' => return Err(format!("`<` inside a tag: {}", &rest[..j])),
                None => {}
            }
            j += 1;
        }
        if j >= rest.len() {
            return Err("unterminated tag".into());
        }
        let inner = &rest[1..j];
        i += j + 1;
        if let Some(name) = inner.strip_prefix('/') {
            let name = name.trim();
            let el = stack.pop().ok_or("closing tag without element")?;
            if el.name != name {
                return Err(format!("</{name}> closes <{}>", el.name));
            }
            if stack.is_empty() {
                return Err(format!("</{name}> closes the document"));
            }
            stack.last_mut().unwrap().children.push(el);
            continue;
        }
        let self_closing = inner.ends_with('/');
        let inner = inner.trim_end_matches('/');
        let name_end = inner
            .find(|c: char| c.is_whitespace())
            .unwrap_or(inner.len());
        let name = &inner[..name_end];
        if !is_name(name) {
            return Err(format!("bad element name `{name}`"));
        }
        let mut attrs = Vec::new();
        let mut a = inner[name_end..].trim_start();
        while !a.is_empty() {
            let eq = a
                .find('=')
                .ok_or_else(|| format!("attribute without value in <{name} {a}"))?;
            let key = a[..eq].trim();
            if !is_name(key) {
                return Err(format!("bad attribute name `{key}` in <{name}>"));
            }
            let v = a[eq + 1..].trim_start();
            let q = v.chars().next().ok_or("missing attribute value")?;
            if q != '"' && q != '\'' {
                return Err(format!("unquoted attribute `{key}` in <{name}>"));
            }
            let close = v[1..].find(q).ok_or("unterminated attribute value")?;
            let val = &v[1..1 + close];
            check_text(val)?;
            if attrs.iter().any(|(k, _): &(String, String)| k == key) {
                return Err(format!("duplicate attribute `{key}` in <{name}>"));
            }
            attrs.push((key.to_string(), val.to_string()));
            a = v[close + 2..].trim_start();
        }
        let el = El {
            name: name.to_string(),
            attrs,
            children: vec![],
        };
        if self_closing {
            stack.last_mut().unwrap().children.push(el);
        } else {
            stack.push(el);
        }
    }
    if stack.len() != 1 {
        return Err(format!("<{}> is never closed", stack.last().unwrap().name));
    }
    let mut doc = stack.pop().unwrap();
    if doc.children.len() != 1 {
        return Err(format!("{} root elements", doc.children.len()));
    }
    Ok(doc.children.pop().unwrap())
}

#[test]
fn the_xml_checker_rejects_broken_documents() {
    assert!(parse_xml("<svg><g></svg>").is_err());
    assert!(parse_xml("<svg a=1/>").is_err());
    assert!(parse_xml("<svg>a < b</svg>").is_err());
    assert!(parse_xml("<svg>a &nbsp; b</svg>").is_err());
    assert!(parse_xml("<svg/><svg/>").is_err());
    assert!(parse_xml("<svg a=\"1\" a=\"2\"/>").is_err());
    let ok = parse_xml("<!DOCTYPE html>\n<html><p class=\"x\">a &amp; b<br/></p></html>").unwrap();
    assert_eq!(ok.all().len(), 3);
    assert_eq!(esc("<a & 'b'>"), "&lt;a &amp; &#39;b&#39;&gt;");
}

fn texts(svg: &str) -> String {
    // Text content, for searching: strip tags, unescape the few entities.
    let mut out = String::new();
    let mut in_tag = false;
    for c in svg.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[test]
fn a_sequential_timeline_shows_lanes_locks_callbacks_and_the_finding() {
    let s = Script::parse(
        "protocol merged\nworld functions=1 tracers=0\nexpect ipmodify-honoured\nklp-enable f0\nbpf-link fentry f0\nbpf-link fexit f0\n",
    )
    .unwrap();
    let svg = timeline_svg(&s);
    let root = parse_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    assert_eq!(root.name, "svg");
    assert_eq!(root.attr("xmlns"), Some("http://www.w3.org/2000/svg"));
    let t = texts(&svg);
    for needle in [
        "livepatch",
        "BPF trampoline",
        "klp-enable f0",
        "bpf-link fexit f0",
        "direct_mutex held",
        "ftrace_lock held",
        "tr(f0)->mutex held",
        "owner callback: tr(f0)->fops <- ENABLE_SHARE_IPMODIFY_SELF",
        "ipmodify-honoured at f0",
        "call sites",
    ] {
        assert!(
            t.contains(needle),
            "{needle} missing from the timeline:\n{t}"
        );
    }
    // Every bar was released (no dashed bar) and each operation finished.
    assert!(!t.contains("never released"), "{t}");
    assert!(!t.contains("never finished"), "{t}");
    // A lock bar per acquisition: the first livepatch enable takes klp_mutex once.
    let bars = root
        .all()
        .into_iter()
        .filter(|e| e.name == "rect" && e.children.iter().any(|c| c.name == "title"))
        .count();
    assert!(bars > 10, "{bars} bars");
}

#[test]
fn a_deadlock_timeline_shows_threads_and_locks_never_released() {
    let s = Script::parse(
        "protocol alt-blocking-peer\nworld functions=1 tracers=0\nexpect deadlock\nt0: bpf-link fentry f0\nt0: bpf-link fexit f0\nt1: kprobe-arm f0\nschedule 0 0 0 0 0 0 0 0 0 0 0 0 1 1 1 1 1 1 1\n",
    )
    .unwrap();
    assert!(s.replay().has(Property::Deadlock));
    let svg = timeline_svg(&s);
    parse_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    let t = texts(&svg);
    for needle in [
        "t0 · BPF trampoline",
        "t1 · kprobes",
        "thread stepping",
        "never finished",
        "never released",
        "deadlock",
    ] {
        assert!(
            t.contains(needle),
            "{needle} missing from the timeline:\n{t}"
        );
    }
}

fn presets(names: &[&str]) -> Vec<Target> {
    names
        .iter()
        .map(|n| Target {
            name: n.to_string(),
            proto: Protocol::preset(n).unwrap(),
            args: format!("--protocol {n}"),
        })
        .collect()
}

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/reproducers")
}

#[test]
fn the_page_is_well_formed_and_every_finding_has_a_replaying_reproducer() {
    let cfg = ReportConfig {
        targets: presets(&["merged", "fixes-2025", "alt-blocking-peer"]),
        seeds: Some(SeedSet::range(0, 60)),
        events: 200,
        jobs: 2,
        depth: 3,
        functions: 2,
        tracers: 1,
        interleave_depth: 3,
        faults: true,
        reproducers: corpus(),
    };
    let r = report::build(&cfg);
    // merged's livepatch bypass is found by the exhaustive search in three operations.
    let c = &r.cells[&(0, Property::IpmodifyHonoured)];
    assert_eq!(c.exhaustive, Some(3));
    assert_eq!(c.shortest().unwrap().script.lines.len(), 3);
    // alt-blocking-peer deadlocks in the interleaving search.
    assert!(r.cells[&(2, Property::Deadlock)].interleaving.is_some());
    // Exhaustive counterexamples and committed reproducers replay; the sweep's are replayed
    // too, and the report lists any that do not.
    for ((ti, p), c) in &r.cells {
        for e in c
            .evidence
            .iter()
            .filter(|e| e.source != report::Source::Sim)
        {
            assert!(
                e.reproduces,
                "{} {p} from {}: does not replay\n{}",
                r.targets[*ti].name,
                e.source.name(),
                e.script
            );
        }
    }
    let dir = std::env::temp_dir().join(format!("ftsim-report-{}", std::process::id()));
    let files = report::write(&r, &dir).unwrap();
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let root = parse_xml(&page).unwrap_or_else(|e| panic!("index.html: {e}"));
    let all = root.all();
    assert!(!all.iter().any(|e| e.name == "script"), "no JavaScript");
    assert!(!all
        .iter()
        .any(|e| e.attr("src").is_some() || e.attr("href").is_some_and(|h| !h.starts_with('#'))));
    // The matrix: a header per protocol, a row per property; every link has its target.
    let ids: Vec<&str> = all.iter().filter_map(|e| e.attr("id")).collect();
    let links: Vec<&str> = all
        .iter()
        .filter_map(|e| e.attr("href"))
        .map(|h| h.trim_start_matches('#'))
        .collect();
    assert_eq!(links.len(), r.cells.values().filter(|c| c.found()).count());
    for l in &links {
        assert!(ids.contains(l), "link #{l} has no target");
    }
    let svgs = all.iter().filter(|e| e.name == "svg").count();
    let replaying = r.cells.values().filter(|c| c.shortest().is_some()).count();
    assert_eq!(
        svgs, replaying,
        "one timeline per finding with a reproducer"
    );
    assert_eq!(
        page.contains("Reproducers that do not replay"),
        !report::not_replaying(&r).is_empty()
    );
    for f in &files {
        if f.extension().is_some_and(|x| x == "svg") {
            parse_xml(&std::fs::read_to_string(f).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        }
        if f.extension().is_some_and(|x| x == "txt") {
            let s = Script::parse(&std::fs::read_to_string(f).unwrap()).unwrap();
            assert!(
                report::replay_with_oracle(&s)
                    .iter()
                    .any(|v| v.property == s.expect[0]),
                "{} does not replay",
                f.display()
            );
        }
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| property | merged | fixes-2025 | alt-blocking-peer |"));
    assert!(
        md.contains("![timeline of merged--ipmodify-honoured](svg/merged--ipmodify-honoured.svg)")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn committed_reproducers_are_attributed_to_their_protocol() {
    let cfg = ReportConfig {
        targets: presets(&["v2", "merged"]),
        seeds: None,
        events: 200,
        jobs: 1,
        depth: 1,
        functions: 1,
        tracers: 0,
        interleave_depth: 0,
        faults: false,
        reproducers: corpus(),
    };
    let r = report::build(&cfg);
    let v2 = r.reproducers.iter().filter(|f| f.protocol == "v2").count();
    assert!(
        v2 == 0 || r.cells.iter().any(|((ti, _), c)| *ti == 0 && c.proptest),
        "v2 reproducers exist but none was attributed"
    );
    for f in &r.reproducers {
        for (p, ok) in &f.expect {
            assert!(ok, "{}: {p} does not reproduce", f.path.display());
        }
    }
}

#[test]
fn command_line_writes_the_report() {
    let dir = std::env::temp_dir().join(format!("ftsim-report-cli-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_ftsim"))
        .args([
            "report",
            "-o",
            dir.to_str().unwrap(),
            "--protocol",
            "merged",
            "--seeds",
            "0..20",
            "--depth",
            "2",
            "--interleave-depth",
            "0",
            "--reproducers",
            corpus().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("index.html"), "{stdout}");
    assert!(dir.join("index.html").is_file());
    assert!(dir.join("report.md").is_file());
    let out = Command::new(env!("CARGO_BIN_EXE_ftsim"))
        .args(["report", "--depth", "0", "-o", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
