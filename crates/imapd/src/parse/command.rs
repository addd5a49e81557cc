//! The command grammar: tag, command name and each command's arguments
//! (RFC 3501, RFC 9051 and the extensions imapd announces).

use super::fetch::parse_fetch_attrs;
use super::lexer::{Cursor, PResult, ParseError, is_astring_char};
use super::search::{parse_search_keys, parse_search_return, parse_sort_criteria};
use super::seqset::parse_seqset;
use super::types::{
    Command, CommandBody, ListOptions, Qresync, SelectParams, StatusItem, StoreMode,
    ThreadAlgorithm,
};

/// Read the tag at the start of a command: 1*(ASTRING-CHAR except "+").
pub fn parse_tag(c: &mut Cursor<'_>) -> PResult<String> {
    let mut t = Vec::new();
    while let Some(b) = c.peek() {
        if !is_astring_char(b) || b == b'+' {
            break;
        }
        t.push(b);
        c.eat(b);
    }
    if t.is_empty() {
        return Err(ParseError("Missing tag"));
    }
    Ok(String::from_utf8_lossy(&t).into_owned())
}

/// Parse a complete command (its literals inline, trailing CRLF removed).
/// On error, the tag (if one was read) comes back for the BAD response.
pub fn parse_command(b: &[u8], max_depth: usize) -> Result<Command, (Option<String>, ParseError)> {
    let mut c = Cursor::new(b, max_depth);
    let tag = parse_tag(&mut c).map_err(|e| (None, e))?;
    let body = (|| {
        c.sp()?;
        let r = command_body(&mut c)?;
        c.end()?;
        Ok(r)
    })()
    .map_err(|e| (Some(tag.clone()), e))?;
    Ok(Command { tag, body })
}

fn command_body(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let name = c.atom_upper()?;
    use CommandBody as B;
    Ok(match name.as_str() {
        "CAPABILITY" => B::Capability,
        "NOOP" => B::Noop,
        "LOGOUT" => B::Logout,
        "STARTTLS" => B::StartTls,
        "NAMESPACE" => B::Namespace,
        "IDLE" => B::Idle,
        "CHECK" => B::Check,
        "CLOSE" => B::Close,
        "UNSELECT" => B::Unselect,
        "EXPUNGE" => B::Expunge,
        "AUTHENTICATE" => {
            c.sp()?;
            let mechanism = c.atom_upper()?;
            let initial = if c.eat(b' ') {
                let a = c.atom()?; // base64 or "="
                Some(a.as_bytes().to_vec())
            } else {
                None
            };
            B::Authenticate { mechanism, initial }
        }
        "LOGIN" => {
            c.sp()?;
            let user = c.astring()?;
            c.sp()?;
            B::Login {
                user,
                password: c.astring()?,
            }
        }
        "ENABLE" => {
            let mut v = Vec::new();
            while c.eat(b' ') {
                v.push(c.atom_upper()?);
            }
            if v.is_empty() {
                return Err(ParseError("ENABLE needs a capability"));
            }
            B::Enable(v)
        }
        "SELECT" | "EXAMINE" => {
            c.sp()?;
            let m = c.astring()?;
            let p = select_params(c)?;
            if name == "SELECT" {
                B::Select(m, p)
            } else {
                B::Examine(m, p)
            }
        }
        "CREATE" => {
            c.sp()?;
            let m = c.astring()?;
            let mut uses = Vec::new();
            if c.eat(b' ') {
                c.open()?;
                if !c.keyword("USE") {
                    return Err(ParseError("Unknown CREATE parameter"));
                }
                c.sp()?;
                uses = c.flag_list()?;
                c.close()?;
            }
            B::Create(m, uses)
        }
        "DELETE" => B::Delete(mailbox_arg(c)?),
        "SUBSCRIBE" => B::Subscribe(mailbox_arg(c)?),
        "UNSUBSCRIBE" => B::Unsubscribe(mailbox_arg(c)?),
        "GETQUOTAROOT" => B::GetQuotaRoot(mailbox_arg(c)?),
        "GETQUOTA" => B::GetQuota(mailbox_arg(c)?),
        "RENAME" => {
            let a = mailbox_arg(c)?;
            B::Rename(a, mailbox_arg(c)?)
        }
        "LIST" => list(c)?,
        "LSUB" => {
            c.sp()?;
            let r = c.astring()?;
            c.sp()?;
            B::Lsub(r, c.list_mailbox()?)
        }
        "STATUS" => {
            let m = mailbox_arg(c)?;
            c.sp()?;
            B::Status(m, status_items(c)?)
        }
        "APPEND" => append(c)?,
        "SEARCH" => search(c, false)?,
        "FETCH" => fetch(c, false)?,
        "STORE" => store(c, false)?,
        "COPY" => copy_move(c, false, false)?,
        "MOVE" => copy_move(c, false, true)?,
        "SORT" => sort(c, false)?,
        "THREAD" => thread(c, false)?,
        "UID" => {
            c.sp()?;
            match c.atom_upper()?.as_str() {
                "SEARCH" => search(c, true)?,
                "FETCH" => fetch(c, true)?,
                "STORE" => store(c, true)?,
                "COPY" => copy_move(c, true, false)?,
                "MOVE" => copy_move(c, true, true)?,
                "SORT" => sort(c, true)?,
                "THREAD" => thread(c, true)?,
                "EXPUNGE" => {
                    c.sp()?;
                    B::UidExpunge(parse_seqset(c)?)
                }
                _ => return Err(ParseError("Unknown UID command")),
            }
        }
        "ID" => {
            c.sp()?;
            id(c)?
        }
        "SETQUOTA" => {
            c.sp()?;
            let root = c.astring()?;
            c.sp()?;
            c.open()?;
            let mut v = Vec::new();
            if c.peek() != Some(b')') {
                loop {
                    let res = c.atom_upper()?;
                    c.sp()?;
                    v.push((res, c.number64()?));
                    if !c.eat(b' ') {
                        break;
                    }
                }
            }
            c.close()?;
            B::SetQuota(root, v)
        }
        "COMPRESS" => {
            c.sp()?;
            B::Compress(c.atom_upper()?)
        }
        _ => return Err(ParseError("Unknown command")),
    })
}

fn mailbox_arg(c: &mut Cursor<'_>) -> PResult<Vec<u8>> {
    c.sp()?;
    c.astring()
}

fn select_params(c: &mut Cursor<'_>) -> PResult<SelectParams> {
    let mut p = SelectParams::default();
    if !c.eat(b' ') {
        return Ok(p);
    }
    c.open()?;
    loop {
        match c.atom_upper()?.as_str() {
            "CONDSTORE" => p.condstore = true,
            "QRESYNC" => {
                c.sp()?;
                c.open()?;
                let uidvalidity = c.nz_number()?;
                c.sp()?;
                let modseq = c.number64()?;
                let mut q = Qresync {
                    uidvalidity,
                    modseq,
                    known_uids: None,
                    seq_match: None,
                };
                if c.eat(b' ') {
                    if c.peek() != Some(b'(') {
                        q.known_uids = Some(parse_seqset(c)?);
                        c.eat(b' ');
                    }
                    if c.peek() == Some(b'(') {
                        c.open()?;
                        let seqs = parse_seqset(c)?;
                        c.sp()?;
                        let uids = parse_seqset(c)?;
                        c.close()?;
                        q.seq_match = Some((seqs, uids));
                    }
                }
                c.close()?;
                p.qresync = Some(q);
            }
            _ => return Err(ParseError("Unknown SELECT parameter")),
        }
        if !c.eat(b' ') {
            break;
        }
    }
    c.close()?;
    Ok(p)
}

fn status_items(c: &mut Cursor<'_>) -> PResult<Vec<StatusItem>> {
    c.open()?;
    let mut v = Vec::new();
    loop {
        v.push(match c.atom_upper()?.as_str() {
            "MESSAGES" => StatusItem::Messages,
            "RECENT" => StatusItem::Recent,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "DELETED" => StatusItem::Deleted,
            "SIZE" => StatusItem::Size,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "DELETED-STORAGE" => StatusItem::DeletedStorage,
            _ => return Err(ParseError("Unknown STATUS item")),
        });
        if !c.eat(b' ') {
            break;
        }
    }
    c.close()?;
    Ok(v)
}

fn list(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mut o = ListOptions::default();
    if c.peek() == Some(b'(') {
        o.extended = true;
        c.open()?;
        if c.peek() != Some(b')') {
            loop {
                match c.atom_upper()?.as_str() {
                    "SUBSCRIBED" => o.subscribed = true,
                    "REMOTE" => o.remote = true,
                    "RECURSIVEMATCH" => o.recursive_match = true,
                    "SPECIAL-USE" => o.special_use = true,
                    _ => return Err(ParseError("Unknown LIST selection option")),
                }
                if !c.eat(b' ') {
                    break;
                }
            }
        }
        c.close()?;
        c.sp()?;
    }
    let reference = c.astring()?;
    c.sp()?;
    let mut patterns = Vec::new();
    if c.peek() == Some(b'(') {
        o.extended = true;
        c.open()?;
        loop {
            patterns.push(c.list_mailbox()?);
            if !c.eat(b' ') {
                break;
            }
        }
        c.close()?;
    } else {
        patterns.push(c.list_mailbox()?);
    }
    if c.eat(b' ') {
        if !c.keyword("RETURN") {
            return Err(ParseError("Expected RETURN"));
        }
        o.extended = true;
        c.sp()?;
        c.open()?;
        if c.peek() != Some(b')') {
            loop {
                match c.atom_upper()?.as_str() {
                    "SUBSCRIBED" => o.return_subscribed = true,
                    "CHILDREN" => o.return_children = true,
                    "SPECIAL-USE" => o.return_special_use = true,
                    "STATUS" => {
                        c.sp()?;
                        o.return_status = Some(status_items(c)?);
                    }
                    _ => return Err(ParseError("Unknown LIST return option")),
                }
                if !c.eat(b' ') {
                    break;
                }
            }
        }
        c.close()?;
    }
    if o.recursive_match && !(o.subscribed) {
        return Err(ParseError("RECURSIVEMATCH needs another selection option"));
    }
    Ok(CommandBody::List {
        reference,
        patterns,
        options: o,
    })
}

fn append(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    let mailbox = mailbox_arg(c)?;
    c.sp()?;
    let mut flags = Vec::new();
    if c.peek() == Some(b'(') {
        flags = c.flag_list()?;
        c.sp()?;
    }
    let mut date = None;
    if c.peek() == Some(b'"') {
        date = Some(c.date_time()?);
        c.sp()?;
    }
    let message = if c.keyword("UTF8") {
        c.sp()?;
        c.open()?;
        let m = c.literal()?;
        c.close()?;
        m
    } else {
        c.literal()?
    };
    Ok(CommandBody::Append {
        mailbox,
        flags,
        date,
        message,
    })
}

fn search(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let mut ret = None;
    if c.keyword("RETURN") {
        c.sp()?;
        ret = Some(parse_search_return(c)?);
        c.sp()?;
    }
    let mut charset = None;
    if c.keyword("CHARSET") {
        c.sp()?;
        charset = Some(String::from_utf8_lossy(&c.astring()?).to_ascii_uppercase());
        c.sp()?;
    }
    Ok(CommandBody::Search {
        uid,
        ret,
        charset,
        key: parse_search_keys(c)?,
    })
}

fn fetch(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let set = parse_seqset(c)?;
    c.sp()?;
    let attrs = parse_fetch_attrs(c)?;
    let mut changed_since = None;
    let mut vanished = false;
    if c.eat(b' ') {
        c.open()?;
        loop {
            match c.atom_upper()?.as_str() {
                "CHANGEDSINCE" => {
                    c.sp()?;
                    changed_since = Some(c.number64()?);
                }
                "VANISHED" if uid => vanished = true,
                _ => return Err(ParseError("Unknown FETCH modifier")),
            }
            if !c.eat(b' ') {
                break;
            }
        }
        c.close()?;
        if vanished && changed_since.is_none() {
            return Err(ParseError("VANISHED needs CHANGEDSINCE"));
        }
    }
    Ok(CommandBody::Fetch {
        uid,
        set,
        attrs,
        changed_since,
        vanished,
    })
}

fn store(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let set = parse_seqset(c)?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.peek() == Some(b'(') {
        c.open()?;
        if !c.keyword("UNCHANGEDSINCE") {
            return Err(ParseError("Unknown STORE modifier"));
        }
        c.sp()?;
        unchanged_since = Some(c.number64()?);
        c.close()?;
        c.sp()?;
    }
    let mode = if c.eat(b'+') {
        StoreMode::Add
    } else if c.eat(b'-') {
        StoreMode::Remove
    } else {
        StoreMode::Replace
    };
    let silent = match c.word_upper()?.as_str() {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return Err(ParseError("Expected FLAGS")),
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        c.flag_list()?
    } else {
        let mut v = vec![c.flag()?];
        while c.eat(b' ') {
            v.push(c.flag()?);
        }
        v
    };
    Ok(CommandBody::Store {
        uid,
        set,
        unchanged_since,
        mode,
        silent,
        flags,
    })
}

fn copy_move(c: &mut Cursor<'_>, uid: bool, mv: bool) -> PResult<CommandBody> {
    c.sp()?;
    let set = parse_seqset(c)?;
    let mailbox = mailbox_arg(c)?;
    Ok(if mv {
        CommandBody::Move { uid, set, mailbox }
    } else {
        CommandBody::Copy { uid, set, mailbox }
    })
}

fn sort(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let mut ret = None;
    if c.keyword("RETURN") {
        c.sp()?;
        ret = Some(parse_search_return(c)?);
        c.sp()?;
    }
    let criteria = parse_sort_criteria(c)?;
    c.sp()?;
    let charset = String::from_utf8_lossy(&c.astring()?).to_ascii_uppercase();
    c.sp()?;
    Ok(CommandBody::Sort {
        uid,
        ret,
        criteria,
        charset,
        key: parse_search_keys(c)?,
    })
}

fn thread(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let algorithm = match c.atom_upper()?.as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        _ => return Err(ParseError("Unknown THREAD algorithm")),
    };
    c.sp()?;
    let charset = String::from_utf8_lossy(&c.astring()?).to_ascii_uppercase();
    c.sp()?;
    Ok(CommandBody::Thread {
        uid,
        algorithm,
        charset,
        key: parse_search_keys(c)?,
    })
}

fn id(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    if c.keyword("NIL") {
        return Ok(CommandBody::Id(None));
    }
    c.open()?;
    let mut v = Vec::new();
    if c.peek() != Some(b')') {
        loop {
            let k = String::from_utf8_lossy(&c.string()?).into_owned();
            c.sp()?;
            let val = c
                .nstring()?
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            v.push((k, val));
            if v.len() > 30 {
                return Err(ParseError("Too many ID fields"));
            }
            if !c.eat(b' ') {
                break;
            }
        }
    }
    c.close()?;
    Ok(CommandBody::Id(Some(v)))
}
