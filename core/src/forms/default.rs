//! The built-in trafficking screening interview.

use super::template::{Template, TemplateError};

/// The JSON source of the built-in template, exposed so it can be exported
/// or shown to reviewers (translators, ethics boards) verbatim.
pub const DEFAULT_TEMPLATE_JSON: &str = include_str!("screening.json");

/// The built-in "trafficking screening interview" (`trafficking_screening`,
/// version 1), so a fresh install can interview without downloading anything.
/// It goes through the same validator as any other template; a test makes
/// sure it loads, so the `Err` case is not expected in practice.
///
/// Parsed once per process (every interview start, save and submit looks its template up; parsing
/// was most of their cost), then cloned.
pub fn default_template() -> Result<Template, TemplateError> {
    static PARSED: std::sync::OnceLock<Template> = std::sync::OnceLock::new();
    if let Some(t) = PARSED.get() {
        return Ok(t.clone());
    }
    let parsed = Template::from_json(DEFAULT_TEMPLATE_JSON)?;
    Ok(PARSED.get_or_init(|| parsed).clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::forms::{
        AnswerValue, Answers, Condition, ConsentScope, Constraints, Literal, LocalizedText,
        Question, QuestionType,
    };
    use proptest::prelude::*;

    fn t() -> Template {
        default_template().unwrap()
    }

    #[test]
    fn loads_with_expected_identity() {
        let t = t();
        assert_eq!(t.id(), "trafficking_screening");
        assert_eq!(t.version(), 1);
        assert_eq!(t.languages(), ["en", "ru", "uz"]);
    }

    fn all_texts(t: &Template) -> Vec<(String, &LocalizedText)> {
        let mut v = vec![("title".to_string(), t.title())];
        for s in t.sections() {
            v.push((format!("{}.title", s.id()), s.title()));
            if let Some(d) = s.description() {
                v.push((format!("{}.description", s.id()), d));
            }
            for q in s.questions() {
                v.push((format!("{}.label", q.id()), q.label()));
                if let Some(h) = q.hint() {
                    v.push((format!("{}.hint", q.id()), h));
                }
                if let Some(w) = q.why_we_ask() {
                    v.push((format!("{}.why_we_ask", q.id()), w));
                }
                for c in q.choices() {
                    v.push((format!("{}.{}", q.id(), c.id()), c.label()));
                }
            }
        }
        v
    }

    #[test]
    fn every_text_is_complete_in_en_ru_uz() {
        let t = t();
        let is_cyr = |c: char| ('\u{0400}'..='\u{04FF}').contains(&c);
        for (what, text) in all_texts(&t) {
            for lang in ["en", "ru", "uz"] {
                let s = text.get(lang).unwrap_or_default();
                assert!(!s.trim().is_empty(), "{what} [{lang}] is empty");
            }
            // Uzbek is written in Latin script; English must not contain Cyrillic either.
            for lang in ["en", "uz"] {
                assert!(
                    !text.get(lang).unwrap().chars().any(is_cyr),
                    "{what} [{lang}] contains Cyrillic"
                );
            }
            // Russian is translated: Cyrillic, or identical to English (brand
            // names such as "Telegram", number ranges such as "18–24").
            let ru = text.get("ru").unwrap();
            assert!(
                ru.chars().any(is_cyr) || ru == text.get("en").unwrap(),
                "{what} [ru] untranslated"
            );
        }
        for q in t.questions() {
            if q.sensitive() {
                assert!(q.why_we_ask().is_some(), "{}", q.id());
            }
        }
    }

    #[test]
    fn structure_follows_the_brief() {
        let t = t();
        let first = t.sections().first().unwrap();
        assert!(first
            .questions()
            .iter()
            .all(|q| q.kind() == QuestionType::Consent));
        for scope in ConsentScope::ALL {
            let q = t.consent_question(scope).unwrap();
            assert!(q.required());
            assert_eq!(t.section_of(q.id()).unwrap().id(), first.id());
        }
        for q in t.questions() {
            assert_eq!(
                q.required(),
                q.kind() == QuestionType::Consent,
                "{}",
                q.id()
            );
        }
        let identity: Vec<_> = t.sections().iter().filter(|s| s.identity()).collect();
        assert_eq!(identity.len(), 1);
        assert!(identity[0]
            .questions()
            .iter()
            .all(|q| !q.id().contains("name")));
        for (kind, scope) in [
            (QuestionType::Audio, "consent_audio"),
            (QuestionType::Photo, "consent_photos"),
        ] {
            let qs: Vec<_> = t.questions().filter(|q| q.kind() == kind).collect();
            assert_eq!(qs.len(), 1);
            assert_eq!(
                qs[0].relevant(),
                Some(&Condition::Equals {
                    question: scope.into(),
                    value: Literal::Bool(true)
                })
            );
        }
        for q in t.questions().filter(|q| q.kind() == QuestionType::Location) {
            assert!(matches!(q.constraints(), Constraints::Location { .. }));
        }
        // ILO indicators of forced labour -> question ids.
        for id in [
            "vulnerability_used",     // abuse of vulnerability
            "job_different",          // deception
            "free_to_leave",          // restriction of movement
            "isolation",              // isolation
            "violence",               // physical and sexual violence
            "threats",                // intimidation and threats
            "documents_holder",       // retention of identity documents
            "wages",                  // withholding of wages
            "debt_bondage",           // debt bondage
            "living_conditions",      // abusive working and living conditions
            "hours_per_day",          // excessive overtime
            "forced_overtime",        // excessive overtime
            "phone_control",          // digital control
            "intimate_images_threat", // sextortion
            "accounts_taken",         // account takeover
            "fake_media",             // AI-generated / fake recruitment media
        ] {
            assert!(t.question(id).is_some(), "{id}");
        }
    }

    #[test]
    fn declining_consent_ends_the_interview() {
        let t = t();
        let mut a = Answers::new();
        a.insert("consent_interview", AnswerValue::Consent(false));
        let ids: Vec<_> = t.visible_questions(&a).iter().map(|q| q.id()).collect();
        assert_eq!(ids, ["consent_interview"]);
        t.validate_submission(&a).unwrap();
        assert!(!t.consent_given(ConsentScope::Interview, &a));
        // Everything else is dropped on merge.
        let mut b = Answers::new();
        b.insert("interpreter_used", AnswerValue::YesNo(true));
        let m = t.merge_batch(&a, &b).unwrap();
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn full_consent_makes_all_consents_required() {
        let t = t();
        let mut a = Answers::new();
        a.insert("consent_interview", AnswerValue::Consent(true));
        let e = t.validate_submission(&a).unwrap_err();
        assert_eq!(e.to_string(), "consent_audio: required");
        for scope in ConsentScope::ALL {
            a.insert(
                t.consent_question(scope).unwrap().id(),
                AnswerValue::Consent(true),
            );
        }
        t.validate_submission(&a).unwrap();
        assert!(t.consent_given(ConsentScope::ShareLawEnforcement, &a));
        let lt = t.localized("uz").unwrap();
        assert_eq!(lt.sections.len(), t.sections().len());
    }

    // ------------------------------------------------------------------
    // Witness finder: build answers that make each question relevant.
    // ------------------------------------------------------------------

    fn holds(t: &Template, c: &Condition, a: &Answers) -> bool {
        let rel = t.relevance(a);
        c.evaluate(&|q: &str| {
            if rel.get(q).copied().unwrap_or(false) {
                a.get(q)
            } else {
                None
            }
        })
    }

    pub(super) fn any_valid(q: &Question) -> AnswerValue {
        use AnswerValue as A;
        let hash = "ab".repeat(32);
        match q.kind() {
            QuestionType::Text | QuestionType::LongText => {
                let n = match q.constraints() {
                    Constraints::Length { min_length, .. } => min_length.unwrap_or(1).max(1),
                    _ => 1,
                };
                A::Text("w".repeat(n as usize))
            }
            QuestionType::Integer => match q.constraints() {
                Constraints::Integer { min, .. } => A::Integer(min.unwrap_or(0)),
                _ => A::Integer(0),
            },
            QuestionType::Decimal => match q.constraints() {
                Constraints::Decimal { min, .. } => A::Decimal(min.unwrap_or(0.0)),
                _ => A::Decimal(0.0),
            },
            QuestionType::Date => match q.constraints() {
                Constraints::Date { min: Some(m), .. } => A::Date(m.clone()),
                _ => A::Date("2020-01-01".into()),
            },
            QuestionType::SingleChoice => A::Choice(q.choices()[0].id().into()),
            QuestionType::MultipleChoice => {
                let n = match q.constraints() {
                    Constraints::ChoiceCount { min_choices, .. } => min_choices.unwrap_or(1).max(1),
                    _ => 1,
                };
                A::Choices(
                    q.choices()
                        .iter()
                        .take(n as usize)
                        .map(|c| c.id().to_string())
                        .collect(),
                )
            }
            QuestionType::YesNo => A::YesNo(true),
            QuestionType::Consent => A::Consent(true),
            QuestionType::Audio => A::Attachment {
                id: "a1".into(),
                sha256: hash,
                media_type: "audio/ogg".into(),
            },
            QuestionType::Photo => A::Attachment {
                id: "p1".into(),
                sha256: hash,
                media_type: "image/jpeg".into(),
            },
            QuestionType::Location => A::Location {
                district: "Yunusobod".into(),
            },
        }
    }

    fn value_for(q: &Question, lit: &Literal) -> AnswerValue {
        use AnswerValue as A;
        match (q.kind(), lit) {
            (QuestionType::SingleChoice, Literal::Str(s)) => A::Choice(s.clone()),
            (QuestionType::MultipleChoice, Literal::Str(s)) => A::Choices(vec![s.clone()]),
            (QuestionType::Date, Literal::Str(s)) => A::Date(s.clone()),
            (QuestionType::Location, Literal::Str(s)) => A::Location {
                district: s.clone(),
            },
            (_, Literal::Str(s)) => A::Text(s.clone()),
            (QuestionType::Consent, Literal::Bool(b)) => A::Consent(*b),
            (_, Literal::Bool(b)) => A::YesNo(*b),
            (_, Literal::Int(i)) => A::Integer(*i),
            (_, Literal::Num(f)) => A::Decimal(*f),
        }
    }

    fn numeric(q: &Question, target: f64, up: bool) -> AnswerValue {
        if q.kind() == QuestionType::Integer {
            let i = if up {
                target.floor() as i64 + 1
            } else {
                target.ceil() as i64 - 1
            };
            AnswerValue::Integer(i)
        } else {
            AnswerValue::Decimal(if up { target + 1.0 } else { target - 1.0 })
        }
    }

    /// Make question `id` relevant: satisfy its section's and its own condition.
    fn make_relevant(t: &Template, id: &str, a: &mut Answers) {
        let s = t.section_of(id).unwrap();
        if let Some(c) = s.relevant() {
            solve(t, c, true, a);
        }
        if let Some(c) = t.question(id).unwrap().relevant() {
            solve(t, c, true, a);
        }
    }

    fn set(t: &Template, q: &str, v: AnswerValue, a: &mut Answers) {
        make_relevant(t, q, a);
        a.insert(q, v);
    }

    /// Try to make `c` evaluate to `positive`. Negations are pushed inwards
    /// (De Morgan); a negated leaf is satisfied by leaving its question unanswered.
    fn solve(t: &Template, c: &Condition, positive: bool, a: &mut Answers) {
        let q = |id: &str| t.question(id).unwrap();
        match (c, positive) {
            (Condition::Not(inner), p) => solve(t, inner, !p, a),
            (Condition::All(items), true) | (Condition::Any(items), false) => {
                for i in items {
                    solve(t, i, positive, a);
                }
            }
            (Condition::Any(items), true) | (Condition::All(items), false) => {
                for i in items {
                    let mut trial = a.clone();
                    solve(t, i, positive, &mut trial);
                    if holds(t, c, &trial) == positive {
                        *a = trial;
                        return;
                    }
                }
                panic!("no satisfiable branch in {c:?}");
            }
            (Condition::Equals { question, value }, true) => {
                set(t, question, value_for(q(question), value), a)
            }
            (Condition::In { question, values }, true) => {
                set(t, question, value_for(q(question), &values[0]), a)
            }
            (Condition::GreaterThan { question, value }, true) => {
                set(t, question, numeric(q(question), *value, true), a)
            }
            (Condition::LessThan { question, value }, true) => {
                set(t, question, numeric(q(question), *value, false), a)
            }
            (Condition::Answered(question), true) => set(t, question, any_valid(q(question)), a),
            (
                Condition::Equals { question, .. }
                | Condition::In { question, .. }
                | Condition::GreaterThan { question, .. }
                | Condition::LessThan { question, .. }
                | Condition::Answered(question),
                false,
            ) => {
                // Leave it unanswered, unless another branch already answered it:
                // then pick a different answer that makes this leaf false.
                if a.contains(question) {
                    let target = q(question);
                    let mut candidates: Vec<AnswerValue> = target
                        .choices()
                        .iter()
                        .map(|ch| value_for(target, &Literal::Str(ch.id().into())))
                        .collect();
                    match target.kind() {
                        QuestionType::YesNo => candidates.push(AnswerValue::YesNo(false)),
                        QuestionType::Consent => candidates.push(AnswerValue::Consent(false)),
                        _ => {}
                    }
                    for v in candidates {
                        let mut trial = a.clone();
                        trial.insert(question.as_str(), v);
                        if !holds(t, c, &trial) {
                            *a = trial;
                            return;
                        }
                    }
                }
                a.remove(question);
            }
        }
    }

    #[test]
    fn every_question_is_reachable() {
        let t = t();
        let mut count = 0;
        for q in t.questions() {
            let mut w = Answers::new();
            make_relevant(&t, q.id(), &mut w);
            assert!(t.is_relevant(q.id(), &w), "{} not reachable", q.id());
            t.validate_batch(&Answers::new(), &w)
                .unwrap_or_else(|e| panic!("witness for {}: {e}", q.id()));
            // Answering it keeps it after merge (nothing in the witness is dropped).
            let mut batch = w.clone();
            batch.insert(q.id(), any_valid(q));
            let merged = t.merge_batch(&Answers::new(), &batch).unwrap();
            assert_eq!(merged, batch, "{}", q.id());
            assert!(t
                .visible_questions(&merged)
                .iter()
                .any(|v| v.id() == q.id()));
            count += 1;
        }
        assert!(count > 40);
    }

    #[test]
    fn nested_conditions_in_default_template() {
        let t = t();
        let mut a = Answers::new();
        a.insert("consent_interview", AnswerValue::Consent(true));
        assert!(!t.is_relevant("fake_media", &a));
        a.insert("first_contact", AnswerValue::Choice("in_person".into()));
        assert!(!t.is_relevant("fake_media", &a));
        assert!(!t.is_relevant("platforms", &a));
        a.insert("first_contact", AnswerValue::Choice("fake_agency".into()));
        assert!(t.is_relevant("fake_media", &a));
        assert!(!t.is_relevant("platforms", &a));
        a.insert("first_contact", AnswerValue::Choice("messaging_app".into()));
        assert!(t.is_relevant("platforms", &a));
        // Violence details only when violence was reported.
        a.insert("violence", AnswerValue::Choices(vec!["no".into()]));
        assert!(!t.is_relevant("violence_details", &a));
        a.insert("violence", AnswerValue::Choices(vec!["sexual".into()]));
        assert!(t.is_relevant("violence_details", &a));
        // Law-enforcement referral option only with that consent.
        assert!(t.is_relevant("referrals", &a));
        assert!(!t.is_relevant("referrals_with_law_enforcement", &a));
        a.insert("consent_share_law_enforcement", AnswerValue::Consent(true));
        assert!(!t.is_relevant("referrals", &a));
        assert!(t.is_relevant("referrals_with_law_enforcement", &a));
        // Excessive overtime follow-up.
        a.insert("hours_per_day", AnswerValue::Integer(12));
        assert!(t.is_relevant("forced_overtime", &a));
    }

    // ------------------------------------------------------------------
    // Property test: arbitrary batches never panic, merged results stay valid.
    // ------------------------------------------------------------------

    type Raw = (usize, u8, String, i64, f64, bool, Vec<usize>);

    fn raw_strategy() -> impl Strategy<Value = Vec<Raw>> {
        proptest::collection::vec(
            (
                0usize..1000,
                0u8..40,
                "\\PC{0,12}",
                any::<i64>(),
                prop_oneof![any::<f64>(), -10.0f64..100.0],
                any::<bool>(),
                proptest::collection::vec(0usize..20, 0..4),
            ),
            0..12,
        )
    }

    fn build(t: &Template, raw: &[Raw]) -> Answers {
        use AnswerValue as A;
        let qs: Vec<&Question> = t.questions().collect();
        let mut a = Answers::new();
        for (idx, kind, s, n, f, b, picks) in raw {
            let q = qs.get(idx % (qs.len() + 3)).copied();
            let id = match q {
                Some(q) => q.id().to_string(),
                None if s.is_empty() => "unknown_question".to_string(),
                None => s.clone(),
            };
            let pick = |i: &usize| -> String {
                q.and_then(|q| q.choices().get(i % q.choices().len().max(1)))
                    .map_or_else(|| s.clone(), |c| c.id().to_string())
            };
            // 70% of entries are shaped after the question, the rest are arbitrary.
            let kind = match *kind {
                k @ 0..=7 => k,
                k @ 8..=27 => k % 8,
                k => k - 20,
            };
            let v = match kind {
                // Mostly well-typed answers, so merges succeed often.
                0..=7 => match q {
                    Some(q) if kind < 4 => any_valid(q),
                    Some(q) => match q.kind() {
                        QuestionType::Integer => A::Integer(n % 40),
                        QuestionType::Decimal => A::Decimal(*f),
                        QuestionType::SingleChoice => A::Choice(pick(picks.first().unwrap_or(&0))),
                        QuestionType::MultipleChoice => {
                            A::Choices(picks.iter().map(pick).collect())
                        }
                        QuestionType::YesNo => A::YesNo(*b),
                        QuestionType::Consent => A::Consent(*b),
                        QuestionType::Text | QuestionType::LongText => A::Text(s.clone()),
                        _ => any_valid(q),
                    },
                    None => A::YesNo(*b),
                },
                8 => A::Text(s.clone()),
                9 => A::Integer(*n),
                10 => A::Decimal(*f),
                11 => A::Date(s.clone()),
                12 => A::Date(format!(
                    "{:04}-{:02}-{:02}",
                    n.rem_euclid(10000),
                    n.rem_euclid(14),
                    n.rem_euclid(33)
                )),
                13 => A::Choice(pick(picks.first().unwrap_or(&0))),
                14 => A::Choices(picks.iter().map(pick).collect()),
                15 => A::YesNo(*b),
                16 => A::Consent(*b),
                17 => A::Attachment {
                    id: s.clone(),
                    sha256: if *b { "0".repeat(64) } else { s.clone() },
                    media_type: if *b {
                        "audio/ogg".into()
                    } else {
                        "image/png".into()
                    },
                },
                _ => A::Location {
                    district: s.clone(),
                },
            };
            a.insert(id, v);
        }
        a
    }

    /// Guard against a vacuous property: enough random batches must merge.
    #[test]
    fn random_batches_often_merge() {
        use proptest::strategy::ValueTree;
        let t = t();
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = raw_strategy();
        let mut ok = 0;
        for _ in 0..200 {
            let raw = strategy.new_tree(&mut runner).unwrap().current();
            if t.merge_batch(&Answers::default(), &build(&t, &raw)).is_ok() {
                ok += 1;
            }
        }
        eprintln!("ok merges: {ok}/200");
        assert!(ok >= 20, "only {ok}/200 random batches merged");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn random_batches_never_panic_and_merges_stay_valid(r1 in raw_strategy(), r2 in raw_strategy()) {
            let t = t();
            let b1 = build(&t, &r1);
            let b2 = build(&t, &r2);
            let empty = Answers::default();
            let _ = t.validate_batch(&empty, &b1);
            let _ = t.validate_submission(&b1);
            let _ = t.merge_batch(&b2, &b1); // arbitrary (possibly invalid) existing
            if let Ok(m1) = t.merge_batch(&empty, &b1) {
                prop_assert!(t.validate_batch(&empty, &m1).is_ok());
                for (id, _) in m1.iter() {
                    prop_assert!(t.is_relevant(id, &m1));
                }
                let _ = t.validate_submission(&m1);
                if let Ok(m2) = t.merge_batch(&m1, &b2) {
                    prop_assert!(t.validate_batch(&empty, &m2).is_ok());
                    // Merging is idempotent once hidden answers are gone.
                    prop_assert_eq!(t.merge_batch(&empty, &m2).ok(), Some(m2.clone()));
                }
            }
        }
    }
}
