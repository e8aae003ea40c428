//! The console's pages, rendered on the server. Every value from the store is escaped
//! ([`esc`]); no inline script or style (the CSP forbids both): one stylesheet and one small
//! script, served from the binary.

use amanat_core::hq::view::{Access, CaseRow, CaseView, InterviewView};
use amanat_core::sync::{Clash, ClashedRecord};
use amanat_core::sync::{CustodyReport, Quarantined};

/// The stylesheet.
pub const CSS: &str = include_str!("assets/console.css");
/// The script: asks before locking or revealing, nothing else.
pub const JS: &str = include_str!("assets/console.js");

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `YYYY-MM-DD HH:MM UTC` from milliseconds since the epoch.
pub fn date(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

fn frame(title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{} — Amanat HQ</title>\
         <link rel=\"stylesheet\" href=\"/assets/console.css\">\
         <script src=\"/assets/console.js\" defer></script></head>\
         <body><header><strong>Amanat HQ review console</strong>{nav}</header>\
         <main>{body}</main></body></html>\n",
        esc(title)
    )
}

fn nav(csrf: &str, access: &Access) -> String {
    format!(
        "<nav><a href=\"/cases\">Cases</a> <a href=\"/custody\">Custody report</a> \
         <span class=\"group\">reading as <b id=\"group\">{}</b>{}</span>\
         <form method=\"post\" action=\"/lock\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button id=\"lock\" type=\"submit\">Lock</button></form></nav>",
        esc(&access.group),
        if access.may_reveal {
            ""
        } else {
            " (de-identified)"
        }
    )
}

/// A page with a title and one paragraph.
pub fn message(title: &str, text: &str) -> String {
    frame(
        title,
        "<nav><a href=\"/cases\">Cases</a></nav>",
        &format!("<h1>{}</h1><p id=\"message\">{}</p>", esc(title), esc(text)),
    )
}

/// The login page.
pub fn login(csrf: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    frame(
        "Unlock",
        "",
        &format!(
            "<h1>Unlock the installation</h1>{error}\
             <p>Ochish · Открыть: the installation's passphrase decrypts on this machine only.</p>\
             <form method=\"post\" action=\"/login\" id=\"login\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label>Passphrase <input type=\"password\" name=\"passphrase\" id=\"passphrase\" \
             autocomplete=\"off\" autofocus></label> <button type=\"submit\" id=\"unlock\">Unlock</button>\
             </form>"
        ),
    )
}

/// The case list.
pub fn cases(rows: &[(CaseRow, usize)], filter: &str, csrf: &str, access: &Access) -> String {
    let mut t = String::from(
        "<table id=\"cases\"><thead><tr><th>Case</th><th>Created</th><th>Last submitted</th>\
         <th>Interviews</th><th>Consent scopes</th><th>Withdrawn</th><th>Clashes</th></tr></thead><tbody>",
    );
    for (r, clashes) in rows {
        t.push_str(&format!(
            "<tr class=\"case{}\"><td><a class=\"code\" href=\"/cases/{}\">{}</a>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
            if r.shared { "" } else { " not-shared" },
            esc(&r.case_id),
            esc(&r.code),
            if r.shared {
                String::new()
            } else {
                format!(" <small>(not shared with {})</small>", esc(&access.group))
            },
            date(r.created_ms),
            r.last_submitted_ms.map(date).unwrap_or_else(|| "—".into()),
            r.interviews,
            esc(&r.scopes.join(", ")),
            esc(&r.withdrawn.join(", ")),
            if r.withdrawal_pending {
                " <b class=\"flag\">withdrawal pending</b>"
            } else {
                ""
            },
            if *clashes > 0 {
                format!("<b class=\"flag\">{clashes}</b>")
            } else {
                "0".into()
            },
        ));
    }
    t.push_str("</tbody></table>");
    frame(
        "Cases",
        &nav(csrf, access),
        &format!(
            "<h1>Cases</h1>\
             <form method=\"get\" action=\"/cases\" class=\"filter\"><label>Case code \
             <input name=\"code\" id=\"filter\" value=\"{}\"></label> <button type=\"submit\">Filter</button></form>\
             {t}\
             <section class=\"actions\"><h2>Actions</h2>\
             <form method=\"post\" action=\"/ack\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" id=\"ack\">Acknowledge to devices (hq ack)</button></form></section>",
            esc(filter)
        ),
    )
}

/// An answer as a reader sees it: the signed JSON (`{"type": …, "value": …}`) reduced to its value.
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(true) => "yes".into(),
        serde_json::Value::Bool(false) => "no".into(),
        serde_json::Value::Null => "—".into(),
        serde_json::Value::Object(m) => {
            if m.get("type").and_then(|t| t.as_str()) == Some("attachment") {
                "(attachment, below)".into()
            } else if let Some(inner) = m.get("value") {
                value_text(inner)
            } else {
                v.to_string()
            }
        }
        serde_json::Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// What the case page needs.
pub struct CasePage<'a> {
    /// The case as the group reads it.
    pub view: &'a CaseView,
    /// The session's CSRF token.
    pub csrf: &'a str,
    /// How the installation reads.
    pub access: &'a Access,
    /// Identity answers revealed for this case.
    pub revealed: bool,
    /// The label language chosen (`?lang=`), else each interview's own.
    pub language: Option<&'a str>,
    /// Clashes waiting in this case.
    pub clashes: &'a [Clash],
    /// The last export's `amanat verify` text.
    pub last_verify: Option<&'a str>,
}

fn custody_cell(i: &InterviewView) -> String {
    if i.verified {
        "<span class=\"verified\">verified</span>".into()
    } else {
        let reasons: Vec<String> = if i.failures.is_empty() {
            vec!["hash mismatch".into()]
        } else {
            i.failures
                .iter()
                .map(|(id, r)| format!("{} ({})", esc(r), esc(id)))
                .collect()
        };
        format!(
            "<span class=\"failed\">failed: {}</span>",
            reasons.join("; ")
        )
    }
}

fn diff(prev: &InterviewView, cur: &InterviewView) -> String {
    let mut rows = String::new();
    let mut questions: Vec<&str> = prev
        .readable
        .answers
        .iter()
        .chain(&cur.readable.answers)
        .map(|a| a.question.as_str())
        .collect();
    questions.dedup();
    let mut seen = std::collections::BTreeSet::new();
    for q in questions {
        if !seen.insert(q) {
            continue;
        }
        let find = |v: &InterviewView| v.readable.answers.iter().find(|a| a.question == q).cloned();
        let (a, b) = (find(prev), find(cur));
        if a.as_ref().map(|x| &x.value) == b.as_ref().map(|x| &x.value) {
            continue;
        }
        let label = b
            .as_ref()
            .or(a.as_ref())
            .map(|x| x.label.clone())
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td>{}</td><td class=\"old\">{}</td><td class=\"new\">{}</td></tr>",
            esc(&label),
            esc(&a
                .map(|x| value_text(&x.value))
                .unwrap_or_else(|| "—".into())),
            esc(&b
                .map(|x| value_text(&x.value))
                .unwrap_or_else(|| "—".into())),
        ));
    }
    if rows.is_empty() {
        return "<p>No answer changed.</p>".into();
    }
    format!(
        "<table class=\"diff\"><thead><tr><th>Question</th><th>Before</th><th>After</th></tr></thead>\
         <tbody>{rows}</tbody></table>"
    )
}

/// The case page.
pub fn case(p: &CasePage<'_>) -> String {
    let v = p.view;
    let id = esc(&v.row.case_id);
    let mut b = format!(
        "<h1>Case <span id=\"case-code\">{}</span></h1>\
         <p class=\"langs\">Labels: <a href=\"/cases/{id}\">interview's own</a> · \
         <a href=\"/cases/{id}?lang=en\">English</a> · <a href=\"/cases/{id}?lang=ru\">Русский</a> · \
         <a href=\"/cases/{id}?lang=uz\">O'zbekcha</a></p>",
        esc(&v.row.code)
    );
    // Consent history.
    b.push_str("<h2>Consent history</h2><table id=\"consent\"><thead><tr><th>Version</th><th>Recorded</th><th>By</th><th>Scopes</th><th>Withdrawn</th></tr></thead><tbody>");
    for c in &v.consent {
        b.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.version,
            date(c.recorded_at_ms),
            esc(&c.recorded_by),
            esc(&c.scopes.join(", ")),
            esc(&c.withdrawn.join(", "))
        ));
    }
    b.push_str("</tbody></table>");
    if v.row.withdrawal_pending {
        b.push_str("<p class=\"flag\">A withdrawal of consent is pending for this case.</p>");
    }
    // Identity.
    let withheld: u32 = v
        .interviews
        .iter()
        .map(|i| i.readable.withheld_identity_answers)
        .sum();
    if p.access.may_reveal && !p.revealed {
        b.push_str(&format!(
            "<section class=\"identity\"><p>Identity answers are hidden ({withheld}).</p>\
             <form method=\"post\" action=\"/cases/{id}/reveal\" class=\"inline\" data-confirm=\"Reveal identity answers? This is recorded in the audit log.\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" id=\"reveal\">Reveal identity (audited)</button></form></section>",
            p.csrf
        ));
    } else if p.revealed {
        b.push_str("<p class=\"identity\" id=\"revealed\">Identity answers revealed (recorded in the audit log).</p>");
    } else {
        b.push_str(&format!(
            "<p class=\"identity\" id=\"deidentified\">De-identified: this installation reads as {}; identity answers ({withheld}) are never shown here.</p>",
            esc(&p.access.group)
        ));
    }
    // Interviews.
    b.push_str(&format!(
        "<h2>Interviews</h2><p>{} versions readable by {}; {} held but not shared with it.</p>",
        v.interviews.len(),
        esc(&p.access.group),
        v.not_shared
    ));
    for i in &v.interviews {
        let r = &i.readable;
        let lang = p.language.unwrap_or(&r.language);
        b.push_str(&format!(
            "<article class=\"interview\" id=\"i-{}\"><h3>{} v{} — {}</h3>\
             <dl><dt>Custody</dt><dd class=\"custody\">{}</dd>\
             <dt>Device</dt><dd>{}</dd><dt>Consent taken by</dt><dd>{}</dd>\
             <dt>Started</dt><dd>{}</dd><dt>Submitted</dt><dd>{}</dd>\
             <dt>Language</dt><dd>{} (labels in {})</dd></dl>",
            esc(&r.interview_id),
            esc(&r.template_id),
            r.template_version,
            if r.amends.is_some() {
                format!("amendment {}", r.amendment)
            } else {
                "original".into()
            },
            custody_cell(i),
            esc(&r.device),
            esc(r.worker.as_deref().unwrap_or("—")),
            date(r.started_at_ms),
            r.submitted_at_ms.map(date).unwrap_or_else(|| "—".into()),
            esc(&r.language),
            esc(lang),
        ));
        b.push_str("<table class=\"answers\"><tbody>");
        for a in &r.answers {
            b.push_str(&format!(
                "<tr data-q=\"{}\"><th>{}</th><td>{}</td></tr>",
                esc(&a.question),
                esc(&a.label),
                esc(&value_text(&a.value))
            ));
        }
        b.push_str("</tbody></table>");
        if let Some(prev_id) = &r.amends {
            match v
                .interviews
                .iter()
                .find(|x| &x.readable.interview_id == prev_id)
            {
                Some(prev) => {
                    b.push_str("<h4>Changes from the amended version</h4>");
                    b.push_str(&diff(prev, i));
                }
                None => b.push_str("<p>The amended version is not readable here.</p>"),
            }
        }
        for a in &r.attachments {
            let src = format!("/attachments/{}", esc(&a.id));
            if a.media_type.starts_with("audio/") {
                b.push_str(&format!(
                    "<p>Recording ({} bytes, {}): <audio controls preload=\"none\" class=\"audio\" src=\"{src}\"></audio></p>",
                    a.size,
                    esc(&a.media_type)
                ));
            } else if a.media_type.starts_with("image/") {
                b.push_str(&format!(
                    "<p>Photo: <img class=\"photo\" alt=\"attachment\" src=\"{src}\"></p>"
                ));
            } else {
                b.push_str(&format!(
                    "<p>Attachment ({} bytes, {})</p>",
                    a.size,
                    esc(&a.media_type)
                ));
            }
        }
        b.push_str("</article>");
    }
    // Clashes.
    if !p.clashes.is_empty() {
        b.push_str("<h2>Clashes</h2>");
        for k in p.clashes {
            let identity = matches!(k.record, ClashedRecord::Identity);
            b.push_str(&format!(
                "<div class=\"clash\"><p>Field <b>{}</b>{}</p>",
                esc(&k.field),
                if identity { " (identity)" } else { "" }
            ));
            for (n, val) in k.values.iter().enumerate() {
                let shown = if identity && !p.revealed {
                    "(hidden)".to_string()
                } else {
                    esc(val.value.as_deref().unwrap_or("(cleared)"))
                };
                b.push_str(&format!(
                    "<form method=\"post\" action=\"/cases/{id}/clash\" class=\"inline\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                     <input type=\"hidden\" name=\"clash\" value=\"{}\">\
                     <input type=\"hidden\" name=\"keep\" value=\"{n}\">\
                     <button type=\"submit\">Keep “{shown}” ({})</button></form> ",
                    p.csrf,
                    esc(&k.id),
                    esc(&val.author)
                ));
            }
            b.push_str("</div>");
        }
    }
    // Actions.
    b.push_str(&format!(
        "<h2>Export this case</h2>\
         <form method=\"post\" action=\"/cases/{id}/export\" id=\"export\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label>New folder (absolute path) <input name=\"dir\" id=\"export-dir\" size=\"40\"></label> \
         <button type=\"submit\">Export and verify</button></form>\
         <p><small>The export is readable by whoever gets the folder (the export command's format); \
         it is {}.</small></p>\
         <h2>Refer this case to a device</h2>\
         <p class=\"todo\" id=\"refer\">Not built yet: referral is being built (issue #12). \
         This place is kept for it.</p>",
        p.csrf,
        if p.revealed {
            "with identity answers"
        } else {
            "de-identified"
        }
    ));
    if let Some(t) = p.last_verify {
        b.push_str(&format!(
            "<h2>Last export's custody report</h2><pre>{}</pre>",
            esc(t)
        ));
    }
    frame(&format!("Case {}", v.row.code), &nav(p.csrf, p.access), &b)
}

/// The custody report: the walk over the installation's store, the refused envelopes, and the
/// last export's `amanat verify` text.
pub fn custody(
    report: &CustodyReport,
    quarantined: &[Quarantined],
    last_verify: Option<&str>,
    csrf: &str,
) -> String {
    let mut b = String::from("<h1>Custody report</h1>");
    b.push_str(&format!(
        "<p id=\"custody-summary\">{}: {} audit entries, {} submitted interviews, {} applied envelopes, \
         {} attachments checked; {} failures.</p>",
        if report.is_clean() {
            "<span class=\"verified\">CLEAN</span>"
        } else {
            "<span class=\"failed\">FAILED</span>"
        },
        report.audit_entries,
        report.interviews,
        report.applied_envelopes,
        report.attachments,
        report.failures.len()
    ));
    if !report.failures.is_empty() {
        b.push_str("<table id=\"failures\"><thead><tr><th>Item</th><th>Id</th><th>Reason</th></tr></thead><tbody>");
        for f in &report.failures {
            b.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"failed\">{}</td></tr>",
                f.item.code(),
                esc(&f.id),
                f.reason.code()
            ));
        }
        b.push_str("</tbody></table>");
    }
    b.push_str(&format!(
        "<h2>Refused envelopes (quarantined)</h2><p>{} refused.</p>",
        quarantined.len()
    ));
    if !quarantined.is_empty() {
        b.push_str("<table id=\"quarantine\"><thead><tr><th>Envelope</th><th>Sender</th><th>Reason</th></tr></thead><tbody>");
        for q in quarantined {
            b.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"failed\">{}</td></tr>",
                esc(&q.envelope_id),
                esc(&q.sender),
                esc(&q.reason)
            ));
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("<h2>Last export (amanat verify)</h2>");
    match last_verify {
        Some(t) => b.push_str(&format!("<pre id=\"verify\">{}</pre>", esc(t))),
        None => b.push_str("<p>No export made in this session. Export a case from its page.</p>"),
    }
    frame(
        "Custody report",
        &format!(
            "<nav><a href=\"/cases\">Cases</a> <a href=\"/custody\">Custody report</a>\
             <form method=\"post\" action=\"/lock\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button id=\"lock\" type=\"submit\">Lock</button></form></nav>"
        ),
        &b,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_formats_dates() {
        assert_eq!(
            esc("<script>\"a\"&'b'</script>"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(1_795_910_400_000 + 3_660_000), "2026-11-29 01:01 UTC");
        assert_eq!(date(951_782_400_000), "2000-02-29 00:00 UTC");
        let v = |j: &str| value_text(&serde_json::from_str(j).unwrap_or_default());
        assert_eq!(v(r#"{"type":"consent","value":true}"#), "yes");
        assert_eq!(v(r#"{"type":"integer","value":14}"#), "14");
        assert_eq!(v(r#"{"type":"choice","value":"25_34"}"#), "25_34");
        assert_eq!(v(r#"{"type":"multi_choice","value":["a","b"]}"#), "a, b");
        assert_eq!(
            v(r#"{"type":"attachment","id":"x"}"#),
            "(attachment, below)"
        );
    }
}
