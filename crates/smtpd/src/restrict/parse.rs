//! Parsing a restriction list from main.cf (or an access table value)
//! into [`Rule`]s, opening the tables it names.

use super::*;

/// Parses one restriction list. `tables` receives the access tables it
/// names (from main.cf); `None` (a list inside an access table value)
/// refuses tables, as Postfix.
pub(super) fn parse_list(
    text: &str,
    def_acl: Option<Check>,
    mut tables: Option<&mut Vec<(String, Result<tables::Table, String>)>>,
    classes: &[String],
) -> Result<Vec<Rule>, String> {
    let words = tables::split_list(text);
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&word) = words.get(i) {
        i += 1;
        let lower = word.to_ascii_lowercase();
        let mut table_for = |check: Check, spec: &str| -> Result<Rule, String> {
            let Some(tables) = tables.as_deref_mut() else {
                return Err(format!("lookup table {spec} inside an access table value"));
            };
            if !spec.contains(':') {
                return Err(format!("bad argument \"{spec}\": need maptype:mapname"));
            }
            let idx = match tables.iter().position(|(s, _)| s == spec) {
                Some(idx) => idx,
                None => {
                    let t = tables::open(spec, tables::Flags::default()).map_err(|e| e.to_string());
                    tables.push((spec.to_string(), t));
                    tables.len() - 1
                }
            };
            Ok(Rule::Access(check, idx))
        };
        let mut arg = |name: &str| -> Result<&str, String> {
            let a = words
                .get(i)
                .copied()
                .ok_or_else(|| format!("restriction {name} requires an argument"))?;
            i += 1;
            Ok(a)
        };
        let rule = match lower.as_str() {
            "permit" => Rule::Permit,
            "reject" => Rule::Reject,
            "defer" => Rule::Defer,
            "defer_if_permit" => Rule::DeferIfPermit,
            "defer_if_reject" => Rule::DeferIfReject,
            "warn_if_reject" => Rule::WarnIfReject,
            "reject_unauth_pipelining" => Rule::RejectUnauthPipelining,
            "reject_plaintext_session" => Rule::RejectPlaintextSession,
            "permit_mynetworks" => Rule::PermitMynetworks,
            "permit_sasl_authenticated" => Rule::PermitSaslAuthenticated,
            "reject_unknown_client_hostname" | "reject_unknown_client" => {
                Rule::RejectUnknownClientHostname
            }
            "reject_rbl_client" | "reject_rbl" => {
                Rule::RejectRblClient(arg(&lower)?.to_ascii_lowercase())
            }
            "reject_invalid_helo_hostname" | "reject_invalid_hostname" => {
                Rule::RejectInvalidHeloHostname
            }
            "reject_non_fqdn_helo_hostname" | "reject_non_fqdn_hostname" => {
                Rule::RejectNonFqdnHeloHostname
            }
            "reject_non_fqdn_sender" => Rule::RejectNonFqdnSender,
            "reject_unknown_sender_domain" => Rule::RejectUnknownSenderDomain,
            "reject_non_fqdn_recipient" => Rule::RejectNonFqdnRecipient,
            "reject_unknown_recipient_domain" => Rule::RejectUnknownRecipientDomain,
            "reject_unauth_destination" => Rule::RejectUnauthDestination,
            "defer_unauth_destination" => Rule::DeferUnauthDestination,
            "permit_auth_destination" => Rule::PermitAuthDestination,
            "reject_unlisted_recipient" | "check_recipient_maps" => Rule::RejectUnlistedRecipient,
            "reject_unverified_recipient" => Rule::RejectUnverified(unverified::Which::Recipient),
            "reject_unverified_sender" => Rule::RejectUnverified(unverified::Which::Sender),
            "check_client_access" => {
                let spec = arg(&lower)?;
                table_for(Check::Client, spec)?
            }
            "check_helo_access" => {
                let spec = arg(&lower)?;
                table_for(Check::Helo, spec)?
            }
            "check_sender_access" => {
                let spec = arg(&lower)?;
                table_for(Check::Sender, spec)?
            }
            "check_recipient_access" => {
                let spec = arg(&lower)?;
                table_for(Check::Recipient, spec)?
            }
            "check_policy_service" => Rule::Policy(arg(&lower)?.to_string()),
            "check_etrn_access" => {
                let spec = arg(&lower)?;
                table_for(Check::Etrn, spec)?
            }
            _ if classes.iter().any(|c| *c == word) => {
                Rule::Class(classes.iter().position(|c| *c == word).unwrap_or_default())
            }
            _ if word.contains(':') => match def_acl {
                Some(c) => table_for(c, word)?,
                None => {
                    return Err(format!(
                        "specify one of check_client_access, check_helo_access, \
                         check_sender_access or check_recipient_access before \"{word}\""
                    ));
                }
            },
            _ => return Err(format!("unknown smtpd restriction: \"{word}\"")),
        };
        out.push(rule);
    }
    Ok(out)
}
