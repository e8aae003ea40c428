//! Organisation orders to devices (docs/SYNC.md, "Orders"): signed by the organisation key
//! ([`amanat_protocol::OrgOrder`]), carried by the relay like an envelope to the devices an HQ
//! installation addresses, obeyed by a device only when the signature verifies under the
//! `org.pub` it enrolled with. Anything else — an unsigned order, another organisation's, a kind
//! this device does not know, a template that does not validate — is quarantined with a reason
//! and changes nothing.
//!
//! **Payload** — not age-encrypted: `base64("AMANAT-ORDER-V1\n" ‖ JSON(OrgOrder))`. What an
//! order carries is the organisation's own text (a form template), not survivor data; the
//! signature, not secrecy, is what a device needs. (Orders that name cases or devices, to come
//! with case assignment, will be sealed to the device.)
//!
//! **Kinds**
//! * `template`: a template JSON source. Installed when it validates; a template already held
//!   under the same id and version with other content is refused (`conflicting_template`), so
//!   interviews in progress never see their form change — corrections come as a new version.
//! * `retention`: `{"days": N}`, how long acknowledged records stay on the device
//!   (`sync::retention`); the newest by issue time is in force.

use super::*;
use amanat_protocol::{OrgOrder, PulledEnvelope};

/// First bytes of an order envelope's payload (after base64).
pub const ORDER_PREFIX: &[u8] = b"AMANAT-ORDER-V1\n";

/// Order kind: install a form template.
pub const KIND_TEMPLATE: &str = "template";
/// Order kind: how long a device keeps records HQ acknowledged, `{"days": N}` (1–3650);
/// `sync::retention`.
pub const KIND_RETENTION: &str = "retention";

/// The days of a `retention` order's body, if it is one of the documented shape.
pub fn retention_days(body: &str) -> Option<u64> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        days: u64,
    }
    serde_json::from_str::<Body>(body)
        .ok()
        .map(|b| b.days)
        .filter(|d| (1..=3650).contains(d))
}

/// The payload (base64) of an envelope carrying `order`.
pub fn payload(order: &OrgOrder) -> Result<String, SyncError> {
    let mut bytes = ORDER_PREFIX.to_vec();
    bytes.extend_from_slice(&serde_json::to_vec(order).map_err(|_| SyncError::Envelope)?);
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// What a device keeps of an order it obeyed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obeyed {
    /// The envelope it came in.
    pub envelope_id: String,
    /// The order, signature included.
    pub order: OrgOrder,
}

/// If `payload` is an order, obeys or refuses it inside the page's transaction: `None` when it
/// is no order (an ordinary envelope), `Some(Ok(()))` when obeyed (or obeyed before),
/// `Some(Err(code))` to quarantine.
pub(super) fn receive(
    tx: &mut Tx<'_>,
    state: &State,
    id: RecordId,
    env: &PulledEnvelope,
    payload: &[u8],
) -> Result<Option<Result<(), &'static str>>, SyncError> {
    let Some(json) = payload.strip_prefix(ORDER_PREFIX) else {
        return Ok(None);
    };
    if tx.get(SYNC_ORDERS, id)?.is_some() {
        return Ok(Some(Ok(()))); // delivered again
    }
    let Ok(order) = serde_json::from_slice::<OrgOrder>(json) else {
        return Ok(Some(Err("malformed_order")));
    };
    if order.verify(&state.org).is_err() {
        return Ok(Some(Err("bad_order_signature")));
    }
    let outcome = match order.kind.as_str() {
        KIND_TEMPLATE => install_template(tx, &order.body)?,
        KIND_RETENTION => match retention_days(&order.body) {
            Some(_) => Ok(()),
            None => Err("invalid_retention"),
        },
        _ => Err("unknown_order"),
    };
    if outcome.is_ok() {
        tx.insert_json_with_id(
            SYNC_ORDERS,
            id,
            &Obeyed {
                envelope_id: env.id.clone(),
                order,
            },
        )?;
    }
    Ok(Some(outcome))
}

fn install_template(tx: &mut Tx<'_>, json: &str) -> Result<Result<(), &'static str>, SyncError> {
    use crate::records::interviews;
    let Ok(template) = crate::forms::Template::from_json(json) else {
        return Ok(Err("invalid_template"));
    };
    match interviews::template_in(tx, template.id(), template.version()) {
        // Held already (installed or built in): the same is a no-op, another is refused.
        Ok(held) => Ok(if held == template {
            Ok(())
        } else {
            Err("conflicting_template")
        }),
        Err(interviews::InterviewError::UnknownTemplate { .. }) => {
            match interviews::install_template_in(tx, json) {
                Ok(_) => Ok(Ok(())),
                Err(interviews::InterviewError::Store(e)) => Err(e.into()),
                Err(_) => Ok(Err("invalid_template")),
            }
        }
        Err(interviews::InterviewError::Store(e)) => Err(e.into()),
        Err(_) => Ok(Err("invalid_template")),
    }
}

/// Orders this device obeyed, oldest first.
pub fn obeyed(vault: &Vault) -> Result<Vec<Obeyed>, SyncError> {
    let store = vault.store()?;
    let mut out = store.read(|tx| {
        let mut out = Vec::new();
        for id in tx.list(SYNC_ORDERS)? {
            out.push(tx.require_json::<Obeyed>(SYNC_ORDERS, id)?.0);
        }
        Ok::<_, SyncError>(out)
    })?;
    out.sort_by_key(|o| o.order.issued_at);
    Ok(out)
}
