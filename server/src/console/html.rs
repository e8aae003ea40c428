//! The console's pages, rendered on the server. Every value from the store is escaped
//! ([`esc`]); no inline script or style (the CSP forbids both): one stylesheet and one small
//! script, served from the binary.

use super::i18n::Ui;
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

fn frame(ui: Ui, title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{} — Amanat HQ</title>\
         <link rel=\"stylesheet\" href=\"/assets/console.css\">\
         <script src=\"/assets/console.js\" defer></script></head>\
         <body><header><strong>{}</strong>{nav}</header>\
         <main>{body}</main></body></html>\n",
        ui.code(),
        esc(title),
        ui.t("title")
    )
}

fn nav(ui: Ui, csrf: &str, access: Option<&Access>) -> String {
    let group = access
        .map(|a| {
            format!(
                "<span class=\"group\">{} <b id=\"group\">{}</b>{}</span>",
                ui.t("reading_as"),
                esc(&a.group),
                if a.may_reveal {
                    String::new()
                } else {
                    format!(" {}", ui.t("deidentified"))
                }
            )
        })
        .unwrap_or_default();
    format!(
        "<nav><a href=\"/cases\">{}</a> <a href=\"/custody\">{}</a> {group}\
         <form method=\"post\" action=\"/ui\" class=\"inline langs\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button name=\"lang\" value=\"en\" id=\"ui-en\">EN</button>\
         <button name=\"lang\" value=\"ru\" id=\"ui-ru\">RU</button>\
         <button name=\"lang\" value=\"uz\" id=\"ui-uz\">UZ</button></form>\
         <form method=\"post\" action=\"/lock\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button id=\"lock\" type=\"submit\">{}</button></form></nav>",
        ui.t("cases"),
        ui.t("custody_report"),
        ui.t("lock"),
    )
}

/// A page with a title and one paragraph.
pub fn message(title: &str, text: &str) -> String {
    frame(
        Ui::En,
        title,
        "<nav><a href=\"/cases\">Cases</a></nav>",
        &format!("<h1>{}</h1><p id=\"message\">{}</p>", esc(title), esc(text)),
    )
}

/// The login page.
pub fn login(ui: Ui, csrf: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    frame(
        ui,
        ui.t("unlock"),
        "<nav class=\"langs\"><a href=\"/login?ui=en\">EN</a> <a href=\"/login?ui=ru\">RU</a> \
         <a href=\"/login?ui=uz\">UZ</a></nav>",
        &format!(
            "<h1>{}</h1>{error}<p>{}</p>\
             <form method=\"post\" action=\"/login\" id=\"login\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"ui\" value=\"{}\">\
             <label>{} <input type=\"password\" name=\"passphrase\" id=\"passphrase\" \
             autocomplete=\"off\" autofocus></label> <button type=\"submit\" id=\"unlock\">{}</button>\
             </form>",
            ui.t("unlock_title"),
            ui.t("unlock_intro"),
            ui.code(),
            ui.t("passphrase"),
            ui.t("unlock"),
        ),
    )
}

/// The case list.
pub fn cases(ui: Ui, rows: &[(CaseRow, usize)], csrf: &str, access: &Access) -> String {
    let mut t = format!(
        "<table id=\"cases\"><thead><tr><th>{}</th><th>{}</th><th>{}</th>\
         <th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        ui.t("case"),
        ui.t("created"),
        ui.t("last_submitted"),
        ui.t("interviews"),
        ui.t("consent_scopes"),
        ui.t("withdrawn"),
        ui.t("clashes"),
    );
    for (r, clashes) in rows {
        t.push_str(&format!(
            "<tr class=\"case{}\" data-code=\"{}\"><td><a class=\"code\" href=\"/cases/{}\">{}</a>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
            if r.shared { "" } else { " not-shared" },
            esc(&r.code.to_uppercase()),
            esc(&r.case_id),
            esc(&r.code),
            if r.shared {
                String::new()
            } else {
                format!(" <small>({})</small>", ui.t("not_shared"))
            },
            date(r.created_ms),
            r.last_submitted_ms.map(date).unwrap_or_else(|| "—".into()),
            r.interviews,
            esc(&r.scopes.join(", ")),
            esc(&r.withdrawn.join(", ")),
            if r.withdrawal_pending {
                format!(" <b class=\"flag\">{}</b>", ui.t("withdrawal_pending"))
            } else {
                String::new()
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
        ui,
        ui.t("cases"),
        &nav(ui, csrf, Some(access)),
        &format!(
            "<h1>{}</h1>\
             <p class=\"filter\"><label>{} ({}) \
             <input id=\"filter\" autocomplete=\"off\"></label></p>\
             {t}\
             <section class=\"actions\"><h2>{}</h2>\
             <form method=\"post\" action=\"/ack\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" id=\"ack\">{}</button></form></section>",
            ui.t("cases"),
            ui.t("case_code"),
            ui.t("filter"),
            ui.t("actions"),
            ui.t("ack"),
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
    /// The language of the page's own words.
    pub ui: Ui,
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
    /// The case's identity fields (empty unless revealed).
    pub identity: &'a [(String, String)],
    /// Devices a case can be referred to (their profile arrived).
    pub devices: &'a [String],
}

fn custody_cell(ui: Ui, i: &InterviewView) -> String {
    if i.verified {
        format!("<span class=\"verified\">{}</span>", ui.t("verified"))
    } else {
        let reasons: Vec<String> = if i.failures.is_empty() {
            vec!["interview_altered".into()]
        } else {
            i.failures
                .iter()
                .map(|(id, r)| format!("{} ({})", esc(r), esc(id)))
                .collect()
        };
        format!(
            "<span class=\"failed\">{}: {}</span>",
            ui.t("failed"),
            reasons.join("; ")
        )
    }
}

fn diff(ui: Ui, prev: &InterviewView, cur: &InterviewView) -> String {
    let mut rows = String::new();
    let mut seen = std::collections::BTreeSet::new();
    for q in prev
        .readable
        .answers
        .iter()
        .chain(&cur.readable.answers)
        .map(|a| a.question.as_str())
    {
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
        return format!("<p>{}</p>", ui.t("no_change"));
    }
    format!(
        "<table class=\"diff\"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>\
         <tbody>{rows}</tbody></table>",
        ui.t("question"),
        ui.t("before"),
        ui.t("after")
    )
}

/// The case page.
pub fn case(p: &CasePage<'_>) -> String {
    let (ui, v) = (p.ui, p.view);
    let id = esc(&v.row.case_id);
    let mut b = format!(
        "<h1>{} <span id=\"case-code\">{}</span></h1>\
         <p class=\"langs\">{}: <a href=\"/cases/{id}\">{}</a> · \
         <a href=\"/cases/{id}?lang=en\">English</a> · <a href=\"/cases/{id}?lang=ru\">Русский</a> · \
         <a href=\"/cases/{id}?lang=uz\">O'zbekcha</a></p>",
        ui.t("case"),
        esc(&v.row.code),
        ui.t("labels"),
        ui.t("interview_own"),
    );
    // Consent history.
    b.push_str(&format!(
        "<h2>{}</h2><table id=\"consent\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
         <th>{}</th></tr></thead><tbody>",
        ui.t("consent_history"),
        ui.t("version"),
        ui.t("recorded"),
        ui.t("by"),
        ui.t("scopes"),
        ui.t("withdrawn"),
    ));
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
        b.push_str(&format!("<p class=\"flag\">{}</p>", ui.t("pending_note")));
    }
    // Identity.
    let withheld: u32 = v
        .interviews
        .iter()
        .map(|i| i.readable.withheld_identity_answers)
        .sum();
    if p.access.may_reveal && !p.revealed {
        b.push_str(&format!(
            "<section class=\"identity\"><p>{} ({withheld}).</p>\
             <form method=\"post\" action=\"/cases/{id}/reveal\" class=\"inline\" data-confirm=\"{}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" id=\"reveal\">{}</button></form></section>",
            ui.t("identity_hidden"),
            esc(ui.t("reveal_confirm")),
            p.csrf,
            ui.t("reveal"),
        ));
    } else if p.revealed {
        b.push_str(&format!(
            "<p class=\"identity\" id=\"revealed\">{}</p>",
            ui.t("revealed")
        ));
        if !p.identity.is_empty() {
            b.push_str("<table id=\"identity\"><tbody>");
            for (k, val) in p.identity {
                b.push_str(&format!(
                    "<tr><th>{}</th><td>{}</td></tr>",
                    esc(k),
                    esc(val)
                ));
            }
            b.push_str("</tbody></table>");
        }
    } else {
        b.push_str(&format!(
            "<p class=\"identity\" id=\"deidentified\">{} ({withheld})</p>",
            ui.t("deidentified_note")
        ));
    }
    // Interviews.
    b.push_str(&format!(
        "<h2>{}</h2><p>{}: {} · {}: {}</p>",
        ui.t("interviews"),
        ui.t("readable"),
        v.interviews.len(),
        ui.t("held_not_shared"),
        v.not_shared
    ));
    for i in &v.interviews {
        let r = &i.readable;
        let lang = p.language.unwrap_or(&r.language);
        b.push_str(&format!(
            "<article class=\"interview\" id=\"i-{}\"><h3>{} v{} — {}</h3>\
             <dl><dt>{}</dt><dd class=\"custody\">{}</dd>\
             <dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>\
             <dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>\
             <dt>{}</dt><dd>{} → {}</dd></dl>",
            esc(&r.interview_id),
            esc(&r.template_id),
            r.template_version,
            if r.amends.is_some() {
                format!("{} {}", ui.t("amendment"), r.amendment)
            } else {
                ui.t("original").to_string()
            },
            ui.t("custody"),
            custody_cell(ui, i),
            ui.t("device"),
            esc(&r.device),
            ui.t("consent_by"),
            esc(r.worker.as_deref().unwrap_or("—")),
            ui.t("started"),
            date(r.started_at_ms),
            ui.t("submitted"),
            r.submitted_at_ms.map(date).unwrap_or_else(|| "—".into()),
            ui.t("language"),
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
                    b.push_str(&format!("<h4>{}</h4>", ui.t("changes")));
                    b.push_str(&diff(ui, prev, i));
                }
                None => b.push_str(&format!("<p>{}</p>", ui.t("amended_missing"))),
            }
        }
        for a in &r.attachments {
            let src = format!("/attachments/{}", esc(&a.id));
            if a.media_type.starts_with("audio/") {
                b.push_str(&format!(
                    "<p>{} ({} B, {}): <audio controls preload=\"none\" class=\"audio\" src=\"{src}\"></audio></p>",
                    ui.t("recording"),
                    a.size,
                    esc(&a.media_type)
                ));
            } else if a.media_type.starts_with("image/") {
                b.push_str(&format!(
                    "<p>{}: <img class=\"photo\" alt=\"{}\" src=\"{src}\"></p>",
                    ui.t("photo"),
                    ui.t("photo"),
                ));
            } else {
                b.push_str(&format!(
                    "<p>{} ({} B, {})</p>",
                    ui.t("attachment"),
                    a.size,
                    esc(&a.media_type)
                ));
            }
        }
        b.push_str("</article>");
    }
    // Clashes.
    if !p.clashes.is_empty() {
        b.push_str(&format!("<h2>{}</h2>", ui.t("clashes")));
        for k in p.clashes {
            let identity = matches!(k.record, ClashedRecord::Identity);
            b.push_str(&format!(
                "<div class=\"clash\"><p>{} <b>{}</b>{}</p>",
                ui.t("field"),
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
                     <button type=\"submit\">{} “{shown}” ({})</button></form> ",
                    p.csrf,
                    esc(&k.id),
                    ui.t("keep"),
                    esc(&val.author)
                ));
            }
            b.push_str("</div>");
        }
    }
    // Actions.
    b.push_str(&format!(
        "<h2>{}</h2>\
         <form method=\"post\" action=\"/cases/{id}/export\" id=\"export\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label>{} <input name=\"dir\" id=\"export-dir\" size=\"40\"></label> \
         <button type=\"submit\">{}</button></form>\
         <p><small>{} ({})</small></p>\
         <h2>{}</h2>",
        ui.t("export_case"),
        p.csrf,
        ui.t("export_folder"),
        ui.t("export_button"),
        ui.t("export_note"),
        if p.revealed {
            ui.t("revealed")
        } else {
            ui.t("deidentified")
        },
        ui.t("refer"),
    ));
    if p.devices.is_empty() {
        b.push_str(&format!("<p id=\"refer\">{}</p>", ui.t("no_devices")));
    } else {
        let options: String = p
            .devices
            .iter()
            .map(|d| format!("<option value=\"{0}\">{0}</option>", esc(d)))
            .collect();
        b.push_str(&format!(
            "<form method=\"post\" action=\"/cases/{id}/refer\" id=\"refer\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <p><small>{}</small></p>\
             <label>{} <select name=\"to\" id=\"refer-to\">{options}</select></label> \
             <label><input type=\"checkbox\" name=\"take_back\" value=\"1\" id=\"take-back\"> {}</label><br>\
             <label>{} <input name=\"org_dir\" id=\"org-dir\" size=\"40\"></label><br>\
             <label>{} <input type=\"password\" name=\"org_pass\" id=\"org-pass\" autocomplete=\"off\"></label> \
             <button type=\"submit\">{}</button></form>",
            p.csrf,
            ui.t("refer_note"),
            ui.t("refer_to"),
            ui.t("take_back"),
            ui.t("org_dir"),
            ui.t("org_pass"),
            ui.t("refer_action"),
        ));
    }
    frame(
        ui,
        &format!("{} {}", ui.t("case"), v.row.code),
        &nav(ui, p.csrf, Some(p.access)),
        &b,
    )
}

/// The custody report: the walk over the installation's store, the refused envelopes, and the
/// last export's `amanat verify` text.
pub fn custody(
    ui: Ui,
    report: &CustodyReport,
    quarantined: &[Quarantined],
    last_verify: Option<&str>,
    csrf: &str,
    access: &Access,
) -> String {
    let mut b = format!("<h1>{}</h1>", ui.t("custody_report"));
    b.push_str(&format!(
        "<p id=\"custody-summary\">{}: {} audit, {} interviews, {} envelopes, {} attachments; \
         {} {}.</p>",
        if report.is_clean() {
            "<span class=\"verified\">CLEAN</span>"
        } else {
            "<span class=\"failed\">FAILED</span>"
        },
        report.audit_entries,
        report.interviews,
        report.applied_envelopes,
        report.attachments,
        report.failures.len(),
        ui.t("failures"),
    ));
    if !report.failures.is_empty() {
        b.push_str(&format!(
            "<table id=\"failures\"><thead><tr><th>{}</th><th>Id</th><th>{}</th></tr></thead><tbody>",
            ui.t("item"),
            ui.t("reason")
        ));
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
        "<h2>{}</h2><p>{}</p>",
        ui.t("refused_envelopes"),
        quarantined.len()
    ));
    if !quarantined.is_empty() {
        b.push_str(&format!(
            "<table id=\"quarantine\"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            ui.t("envelope"),
            ui.t("sender"),
            ui.t("reason")
        ));
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
    b.push_str(&format!("<h2>{}</h2>", ui.t("last_export")));
    match last_verify {
        Some(t) => b.push_str(&format!("<pre id=\"verify\">{}</pre>", esc(t))),
        None => b.push_str(&format!("<p>{}</p>", ui.t("no_export"))),
    }
    frame(ui, ui.t("custody_report"), &nav(ui, csrf, Some(access)), &b)
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

    #[test]
    fn every_word_the_pages_use_is_in_three_languages() {
        let src = include_str!("html.rs");
        let mut used = 0;
        for part in src.split("ui.t(\"").skip(1) {
            let key = part.split('"').next().unwrap_or_default();
            assert!(
                super::super::i18n::TEXT.iter().any(|(k, _)| *k == key),
                "{key} has no translations"
            );
            used += 1;
        }
        assert!(used > 50, "{used}");
    }
}
