//! The console's own words in English, Russian and Uzbek (Latin). The operator picks the
//! language of the page (`/login?ui=ru`, or the EN · RU · UZ buttons); the language of the
//! answers' question labels is chosen apart (`?lang=` on a case page: the interview's own by
//! default).

/// A language of the console's own text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ui {
    /// English.
    #[default]
    En,
    /// Russian.
    Ru,
    /// Uzbek (Latin).
    Uz,
}

impl Ui {
    /// From `en`, `ru`, `uz`.
    pub fn parse(code: &str) -> Option<Ui> {
        match code {
            "en" => Some(Ui::En),
            "ru" => Some(Ui::Ru),
            "uz" => Some(Ui::Uz),
            _ => None,
        }
    }

    /// `en`, `ru` or `uz`.
    pub fn code(self) -> &'static str {
        match self {
            Ui::En => "en",
            Ui::Ru => "ru",
            Ui::Uz => "uz",
        }
    }

    /// The text of `key` in this language (the key itself if it is not in the table, which a
    /// unit test rules out for every key the pages use).
    pub fn t(self, key: &'static str) -> &'static str {
        let i = match self {
            Ui::En => 0,
            Ui::Ru => 1,
            Ui::Uz => 2,
        };
        TEXT.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, t)| t[i])
            .unwrap_or(key)
    }
}

/// Every key with its English, Russian and Uzbek text.
pub const TEXT: &[(&str, [&str; 3])] = &[
    ("title", ["Amanat HQ review console", "Amanat: консоль просмотра штаба", "Amanat: shtab ko'rib chiqish konsoli"]),
    ("cases", ["Cases", "Дела", "Ishlar"]),
    ("custody_report", ["Custody report", "Отчёт о цепочке хранения", "Saqlash zanjiri hisoboti"]),
    ("reading_as", ["reading as", "группа", "guruh"]),
    ("deidentified", ["(de-identified)", "(обезличено)", "(shaxsi yashirilgan)"]),
    ("lock", ["Lock", "Заблокировать", "Qulflash"]),
    ("unlock_title", ["Unlock the installation", "Разблокировать установку", "O'rnatmani ochish"]),
    ("unlock_intro", [
        "The installation's passphrase decrypts on this machine only.",
        "Парольная фраза расшифровывает данные только на этом компьютере.",
        "Parol iborasi ma'lumotlarni faqat shu kompyuterda ochadi.",
    ]),
    ("passphrase", ["Passphrase", "Парольная фраза", "Parol iborasi"]),
    ("unlock", ["Unlock", "Открыть", "Ochish"]),
    ("case", ["Case", "Дело", "Ish"]),
    ("created", ["Created", "Создано", "Yaratilgan"]),
    ("last_submitted", ["Last submitted", "Последняя отправка", "Oxirgi yuborilgan"]),
    ("interviews", ["Interviews", "Интервью", "Suhbatlar"]),
    ("consent_scopes", ["Consent scopes", "Объём согласия", "Rozilik doirasi"]),
    ("withdrawn", ["Withdrawn", "Отозвано", "Qaytarib olingan"]),
    ("clashes", ["Clashes", "Конфликты", "Ziddiyatlar"]),
    ("case_code", ["Case code", "Код дела", "Ish kodi"]),
    ("filter", ["Filter", "Фильтр", "Saralash"]),
    ("actions", ["Actions", "Действия", "Amallar"]),
    ("ack", [
        "Acknowledge to devices (hq ack)",
        "Подтвердить получение устройствам (hq ack)",
        "Qurilmalarga qabul qilinganini tasdiqlash (hq ack)",
    ]),
    ("not_shared", ["not shared with this group", "не передано этой группе", "bu guruhga berilmagan"]),
    ("withdrawal_pending", ["withdrawal pending", "ожидается отзыв согласия", "rozilikni qaytarish kutilmoqda"]),
    ("labels", ["Question labels", "Подписи вопросов", "Savol yorliqlari"]),
    ("interview_own", ["interview's own", "язык интервью", "suhbat tili"]),
    ("consent_history", ["Consent history", "История согласия", "Rozilik tarixi"]),
    ("version", ["Version", "Версия", "Versiya"]),
    ("recorded", ["Recorded", "Записано", "Yozilgan"]),
    ("by", ["By", "Кем", "Kim tomonidan"]),
    ("scopes", ["Scopes", "Объём", "Doira"]),
    ("pending_note", [
        "A withdrawal of consent is pending for this case.",
        "По этому делу ожидается отзыв согласия.",
        "Bu ish bo'yicha rozilikni qaytarish kutilmoqda.",
    ]),
    ("identity_hidden", [
        "Identity answers are hidden",
        "Ответы, раскрывающие личность, скрыты",
        "Shaxsni aniqlovchi javoblar yashirilgan",
    ]),
    ("reveal", [
        "Reveal identity (audited)",
        "Показать личные данные (записывается в журнал)",
        "Shaxsiy ma'lumotlarni ko'rsatish (jurnalga yoziladi)",
    ]),
    ("reveal_confirm", [
        "Reveal identity answers? This is recorded in the audit log.",
        "Показать личные данные? Это будет записано в журнал аудита.",
        "Shaxsiy ma'lumotlar ko'rsatilsinmi? Bu audit jurnaliga yoziladi.",
    ]),
    ("revealed", [
        "Identity answers revealed (recorded in the audit log).",
        "Личные данные показаны (записано в журнал аудита).",
        "Shaxsiy ma'lumotlar ko'rsatildi (audit jurnaliga yozildi).",
    ]),
    ("deidentified_note", [
        "De-identified: identity answers are never shown to this group here.",
        "Обезличено: ответы, раскрывающие личность, этой группе здесь не показываются.",
        "Shaxsi yashirilgan: shaxsni aniqlovchi javoblar bu guruhga bu yerda ko'rsatilmaydi.",
    ]),
    ("readable", ["readable by this group", "доступно этой группе", "bu guruh o'qiy oladi"]),
    ("held_not_shared", ["held, not shared with it", "хранится, но не передано ей", "saqlanadi, lekin unga berilmagan"]),
    ("original", ["original", "оригинал", "asl nusxa"]),
    ("amendment", ["amendment", "исправление", "tuzatish"]),
    ("custody", ["Custody", "Цепочка хранения", "Saqlash zanjiri"]),
    ("verified", ["verified", "проверено", "tasdiqlangan"]),
    ("failed", ["failed", "не прошло проверку", "tekshiruvdan o'tmadi"]),
    ("device", ["Device", "Устройство", "Qurilma"]),
    ("consent_by", ["Consent taken by", "Согласие получил(а)", "Rozilikni olgan"]),
    ("started", ["Started", "Начато", "Boshlangan"]),
    ("submitted", ["Submitted", "Отправлено", "Yuborilgan"]),
    ("language", ["Language", "Язык", "Til"]),
    ("changes", [
        "Changes from the amended version",
        "Изменения по сравнению с исправленной версией",
        "Tuzatilgan versiyaga nisbatan o'zgarishlar",
    ]),
    ("no_change", ["No answer changed.", "Ни один ответ не изменился.", "Hech bir javob o'zgarmadi."]),
    ("amended_missing", [
        "The amended version is not readable here.",
        "Исправленная версия здесь недоступна.",
        "Tuzatilgan versiya bu yerda o'qib bo'lmaydi.",
    ]),
    ("question", ["Question", "Вопрос", "Savol"]),
    ("before", ["Before", "Было", "Oldin"]),
    ("after", ["After", "Стало", "Keyin"]),
    ("recording", ["Recording", "Запись", "Yozuv"]),
    ("photo", ["Photo", "Фото", "Surat"]),
    ("attachment", ["Attachment", "Вложение", "Ilova"]),
    ("keep", ["Keep", "Оставить", "Qoldirish"]),
    ("field", ["Field", "Поле", "Maydon"]),
    ("export_case", ["Export this case", "Экспортировать дело", "Ishni eksport qilish"]),
    ("export_folder", ["New folder (absolute path)", "Новая папка (полный путь)", "Yangi papka (to'liq yo'l)"]),
    ("export_button", ["Export and verify", "Экспортировать и проверить", "Eksport qilish va tekshirish"]),
    ("export_note", [
        "The export is readable by whoever gets the folder (the export command's format).",
        "Экспорт может прочитать любой, кто получит папку (формат команды export).",
        "Eksportni papkani olgan har kim o'qiy oladi (export buyrug'i formati).",
    ]),
    ("refer", ["Refer this case to a device", "Передать дело на устройство", "Ishni qurilmaga topshirish"]),
    ("refer_note", [
        "The organisation key signs the referral (amanat hq refer): name the organisation directory and type its passphrase. The device obeys on its next sync.",
        "Передачу подписывает ключ организации (amanat hq refer): укажите каталог организации и её парольную фразу. Устройство выполнит её при следующей синхронизации.",
        "Topshirishni tashkilot kaliti imzolaydi (amanat hq refer): tashkilot papkasini ko'rsating va uning parol iborasini kiriting. Qurilma keyingi sinxronlashda bajaradi.",
    ]),
    ("refer_to", ["Device", "Устройство", "Qurilma"]),
    ("refer_action", ["Refer", "Передать", "Topshirish"]),
    ("take_back", ["Take back from this device", "Забрать у этого устройства", "Bu qurilmadan qaytarib olish"]),
    ("org_dir", ["Organisation directory", "Каталог организации", "Tashkilot papkasi"]),
    ("org_pass", ["Organisation passphrase", "Парольная фраза организации", "Tashkilot parol iborasi"]),
    ("no_devices", [
        "No device can receive referrals yet (its keys arrive with its first sync).",
        "Пока ни одно устройство не может принимать дела (его ключи приходят с первой синхронизацией).",
        "Hozircha hech bir qurilma ish qabul qila olmaydi (uning kalitlari birinchi sinxronlashda keladi).",
    ]),
    ("last_export", ["Last export (amanat verify)", "Последний экспорт (amanat verify)", "Oxirgi eksport (amanat verify)"]),
    ("no_export", [
        "No export made in this session. Export a case from its page.",
        "В этом сеансе экспорта не было. Экспортируйте дело с его страницы.",
        "Bu seansda eksport qilinmagan. Ishni o'z sahifasidan eksport qiling.",
    ]),
    ("refused_envelopes", [
        "Refused envelopes (quarantined)",
        "Отклонённые конверты (карантин)",
        "Rad etilgan konvertlar (karantin)",
    ]),
    ("failures", ["failures", "ошибок", "xato"]),
    ("item", ["Item", "Элемент", "Element"]),
    ("reason", ["Reason", "Причина", "Sabab"]),
    ("sender", ["Sender", "Отправитель", "Yuboruvchi"]),
    ("envelope", ["Envelope", "Конверт", "Konvert"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_three_distinct_non_empty_texts() {
        let mut keys = std::collections::BTreeSet::new();
        for (k, t) in TEXT {
            assert!(keys.insert(*k), "{k} twice");
            for s in t {
                assert!(!s.trim().is_empty(), "{k}");
            }
            assert_ne!(t[0], t[1], "{k}: Russian is English");
            assert_ne!(t[0], t[2], "{k}: Uzbek is English");
            // Uzbek is written in Latin letters here.
            assert!(
                !t[2].chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)),
                "{k}"
            );
        }
        assert_eq!(Ui::Ru.t("cases"), "Дела");
        assert_eq!(Ui::parse("uz"), Some(Ui::Uz));
        assert_eq!(Ui::parse("de"), None);
    }
}
