//! The parsed form of every IMAP command: what the grammar in `command`,
//! `fetch`, `search` and `seqset` produces and the session consumes.

/// One parsed client command: its tag and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag, echoed in the tagged response.
    pub tag: String,
    /// The command proper.
    pub body: CommandBody,
}

/// A mailbox name as the client sent it (modified UTF-7 or UTF-8; the
/// session decodes it with `response::mutf7` according to UTF8=ACCEPT).
pub type MailboxName = Vec<u8>;

/// A sequence number or UID in a set: a value or `*` (the largest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    /// A number (non-zero).
    Value(u32),
    /// `*`: the largest number in use.
    Star,
}

/// A sequence set: ranges, or `$` (the saved SEARCHRES result, RFC 5182).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqSet {
    /// Ranges as given (each `a:b` in either order; single numbers are `a:a`).
    Ranges(Vec<(SeqNum, SeqNum)>),
    /// `$`: the result saved by the last SEARCH RETURN (SAVE).
    Saved,
    /// Resolved, sorted, merged ranges: made by [`SeqSet::normalize`],
    /// never by the parser; membership is a binary search.
    Sorted(Vec<(u32, u32)>),
}

/// A date (SEARCH BEFORE/ON/SINCE...): day, month 1-12, year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub year: u16,
    /// Month, 1-12.
    pub month: u8,
    /// Day of month, 1-31.
    pub day: u8,
}

/// A date-time (APPEND's internal date): local time and zone offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// The calendar date.
    pub date: Date,
    /// Hour, minute, second.
    pub time: (u8, u8, u8),
    /// Offset from UTC in minutes (east positive).
    pub zone_minutes: i16,
}

/// The `text` part of a section specifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// HEADER.
    Header,
    /// HEADER.FIELDS (names), upper-cased.
    HeaderFields(Vec<String>),
    /// HEADER.FIELDS.NOT (names), upper-cased.
    HeaderFieldsNot(Vec<String>),
    /// TEXT.
    Text,
    /// MIME (only after a part number).
    Mime,
}

/// A section: part numbers (1-based, may be empty) then an optional text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// Part path, e.g. 1.2.3 is `[1, 2, 3]`.
    pub part: Vec<u32>,
    /// HEADER, TEXT, ... or none (the whole part).
    pub text: Option<SectionText>,
}

/// One FETCH data item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    /// ENVELOPE.
    Envelope,
    /// FLAGS.
    Flags,
    /// INTERNALDATE.
    InternalDate,
    /// RFC822 (like BODY[]).
    Rfc822,
    /// RFC822.HEADER (like `BODY.PEEK[HEADER]`).
    Rfc822Header,
    /// RFC822.SIZE.
    Rfc822Size,
    /// RFC822.TEXT (like `BODY[TEXT]`).
    Rfc822Text,
    /// BODY (structure without extension data).
    Body,
    /// BODYSTRUCTURE.
    BodyStructure,
    /// UID.
    Uid,
    /// MODSEQ (CONDSTORE).
    ModSeq,
    /// `BODY[section]<partial>` or `BODY.PEEK[...]`.
    BodySection {
        /// BODY.PEEK: does not set \Seen.
        peek: bool,
        /// The section.
        section: Section,
        /// `<offset.count>`.
        partial: Option<(u64, u64)>,
    },
    /// `BINARY[part]<partial>` or BINARY.PEEK (RFC 3516 / 9051).
    Binary {
        /// BINARY.PEEK.
        peek: bool,
        /// Part path.
        part: Vec<u32>,
        /// `<offset.count>`.
        partial: Option<(u64, u64)>,
    },
    /// `BINARY.SIZE[part]`.
    BinarySize(Vec<u32>),
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// FLAGS: replace.
    Replace,
    /// +FLAGS: add.
    Add,
    /// -FLAGS: remove.
    Remove,
}

/// A STATUS data item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    /// MESSAGES.
    Messages,
    /// RECENT (rev1).
    Recent,
    /// UIDNEXT.
    UidNext,
    /// UIDVALIDITY.
    UidValidity,
    /// UNSEEN.
    Unseen,
    /// DELETED (rev2).
    Deleted,
    /// SIZE (STATUS=SIZE, RFC 8438).
    Size,
    /// HIGHESTMODSEQ (CONDSTORE).
    HighestModSeq,
    /// DELETED-STORAGE (QUOTA, RFC 9208 4.3).
    DeletedStorage,
}

/// SEARCH RETURN options (ESEARCH, RFC 4731 / 9051, SEARCHRES).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    /// MIN.
    Min,
    /// MAX.
    Max,
    /// ALL.
    All,
    /// COUNT.
    Count,
    /// SAVE (RFC 5182).
    Save,
}

/// A SEARCH key (RFC 3501 6.4.4, RFC 9051 6.4.4, CONDSTORE MODSEQ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// Several keys, all of which must match (a parenthesised list or the top level).
    And(Vec<SearchKey>),
    /// A sequence set.
    Seq(SeqSet),
    /// ALL.
    All,
    /// ANSWERED.
    Answered,
    /// BCC string.
    Bcc(String),
    /// BEFORE date (internal date).
    Before(Date),
    /// BODY string.
    Body(String),
    /// CC string.
    Cc(String),
    /// DELETED.
    Deleted,
    /// DRAFT.
    Draft,
    /// FLAGGED.
    Flagged,
    /// FROM string.
    From(String),
    /// HEADER field-name string.
    Header(String, String),
    /// KEYWORD flag.
    Keyword(String),
    /// LARGER n.
    Larger(u64),
    /// NEW (rev1: RECENT UNSEEN).
    New,
    /// NOT key.
    Not(Box<SearchKey>),
    /// OLD (rev1: NOT RECENT).
    Old,
    /// ON date.
    On(Date),
    /// OR key key.
    Or(Box<SearchKey>, Box<SearchKey>),
    /// RECENT.
    Recent,
    /// SEEN.
    Seen,
    /// SENTBEFORE date (Date: header).
    SentBefore(Date),
    /// SENTON date.
    SentOn(Date),
    /// SENTSINCE date.
    SentSince(Date),
    /// SINCE date.
    Since(Date),
    /// SMALLER n.
    Smaller(u64),
    /// SUBJECT string.
    Subject(String),
    /// TEXT string.
    Text(String),
    /// TO string.
    To(String),
    /// UID set.
    Uid(SeqSet),
    /// UNANSWERED.
    Unanswered,
    /// UNDELETED.
    Undeleted,
    /// UNDRAFT.
    Undraft,
    /// UNFLAGGED.
    Unflagged,
    /// UNKEYWORD flag.
    Unkeyword(String),
    /// UNSEEN.
    Unseen,
    /// MODSEQ [entry-name entry-type] n (CONDSTORE).
    ModSeq(u64),
}

/// A SORT criterion (RFC 5256), with REVERSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    /// REVERSE was given.
    pub reverse: bool,
    /// The key.
    pub key: SortKey,
}

/// SORT keys of RFC 5256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// ARRIVAL (internal date).
    Arrival,
    /// CC.
    Cc,
    /// DATE (sent date).
    Date,
    /// FROM.
    From,
    /// SIZE.
    Size,
    /// SUBJECT (base subject).
    Subject,
    /// TO.
    To,
}

/// THREAD algorithms (RFC 5256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    /// ORDEREDSUBJECT.
    OrderedSubject,
    /// REFERENCES.
    References,
}

/// LIST-EXTENDED selection options and RETURN options (RFC 5258, 5819, 6154).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// SUBSCRIBED selection.
    pub subscribed: bool,
    /// REMOTE selection (accepted, nothing remote here).
    pub remote: bool,
    /// RECURSIVEMATCH selection.
    pub recursive_match: bool,
    /// SPECIAL-USE selection.
    pub special_use: bool,
    /// RETURN (SUBSCRIBED).
    pub return_subscribed: bool,
    /// RETURN (CHILDREN).
    pub return_children: bool,
    /// RETURN (SPECIAL-USE).
    pub return_special_use: bool,
    /// RETURN (STATUS (...)) (LIST-STATUS).
    pub return_status: Option<Vec<StatusItem>>,
    /// The command was extended (selection, several patterns or RETURN).
    pub extended: bool,
}

/// SELECT/EXAMINE parameters (CONDSTORE, QRESYNC).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParams {
    /// CONDSTORE.
    pub condstore: bool,
    /// QRESYNC (uidvalidity modseq [known-uids [(seq uids)]]).
    pub qresync: Option<Qresync>,
}

/// The QRESYNC select parameter (RFC 7162 3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    /// The client's last known UIDVALIDITY.
    pub uidvalidity: u32,
    /// The client's last known modification sequence.
    pub modseq: u64,
    /// Known UIDs.
    pub known_uids: Option<SeqSet>,
    /// Sequence match data: sequence numbers and their UIDs.
    pub seq_match: Option<(SeqSet, SeqSet)>,
}

/// The command proper, one variant per command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    /// CAPABILITY.
    Capability,
    /// NOOP.
    Noop,
    /// LOGOUT.
    Logout,
    /// STARTTLS.
    StartTls,
    /// AUTHENTICATE mechanism [initial-response] (SASL-IR; `=` is an empty response).
    Authenticate {
        /// Mechanism, upper-cased.
        mechanism: String,
        /// The base64 initial response as sent.
        initial: Option<Vec<u8>>,
    },
    /// LOGIN user password.
    Login {
        /// User name.
        user: Vec<u8>,
        /// Password.
        password: Vec<u8>,
    },
    /// ENABLE capabilities (upper-cased).
    Enable(Vec<String>),
    /// SELECT mailbox `[params]`.
    Select(MailboxName, SelectParams),
    /// EXAMINE mailbox `[params]`.
    Examine(MailboxName, SelectParams),
    /// CREATE mailbox [(USE (...))].
    Create(MailboxName, Vec<String>),
    /// DELETE mailbox.
    Delete(MailboxName),
    /// RENAME from to.
    Rename(MailboxName, MailboxName),
    /// SUBSCRIBE mailbox.
    Subscribe(MailboxName),
    /// UNSUBSCRIBE mailbox.
    Unsubscribe(MailboxName),
    /// LIST [(selection)] reference pattern(s) [RETURN (...)].
    List {
        /// Reference name.
        reference: MailboxName,
        /// One or more patterns.
        patterns: Vec<MailboxName>,
        /// Extended options.
        options: ListOptions,
    },
    /// LSUB reference pattern.
    Lsub(MailboxName, MailboxName),
    /// NAMESPACE.
    Namespace,
    /// STATUS mailbox (items).
    Status(MailboxName, Vec<StatusItem>),
    /// APPEND mailbox `[flags]` `[date-time]` literal (UTF8 (literal8) accepted).
    Append {
        /// Target mailbox.
        mailbox: MailboxName,
        /// Flags to set.
        flags: Vec<String>,
        /// Internal date.
        date: Option<DateTime>,
        /// The message.
        message: Vec<u8>,
    },
    /// IDLE.
    Idle,
    /// CHECK.
    Check,
    /// CLOSE.
    Close,
    /// UNSELECT.
    Unselect,
    /// EXPUNGE.
    Expunge,
    /// UID EXPUNGE set (UIDPLUS).
    UidExpunge(SeqSet),
    /// `[UID]` SEARCH `[RETURN (...)]` `[CHARSET c]` keys.
    Search {
        /// UID SEARCH.
        uid: bool,
        /// RETURN options (ESEARCH), `Some(vec![])` is RETURN ().
        ret: Option<Vec<SearchReturn>>,
        /// CHARSET, upper-cased.
        charset: Option<String>,
        /// The criteria (an `And`).
        key: SearchKey,
    },
    /// `[UID] FETCH set items [(CHANGEDSINCE n [VANISHED])]`.
    Fetch {
        /// UID FETCH.
        uid: bool,
        /// The messages.
        set: SeqSet,
        /// The data items (macros expanded).
        attrs: Vec<FetchAttr>,
        /// CHANGEDSINCE modseq.
        changed_since: Option<u64>,
        /// VANISHED (QRESYNC, UID FETCH only).
        vanished: bool,
    },
    /// `[UID] STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags`.
    Store {
        /// UID STORE.
        uid: bool,
        /// The messages.
        set: SeqSet,
        /// UNCHANGEDSINCE modseq.
        unchanged_since: Option<u64>,
        /// Replace, add or remove.
        mode: StoreMode,
        /// .SILENT.
        silent: bool,
        /// The flags.
        flags: Vec<String>,
    },
    /// `[UID]` COPY set mailbox.
    Copy {
        /// UID COPY.
        uid: bool,
        /// The messages.
        set: SeqSet,
        /// Target.
        mailbox: MailboxName,
    },
    /// `[UID]` MOVE set mailbox.
    Move {
        /// UID MOVE.
        uid: bool,
        /// The messages.
        set: SeqSet,
        /// Target.
        mailbox: MailboxName,
    },
    /// ID (NIL or field/value pairs).
    Id(Option<Vec<(String, Option<String>)>>),
    /// `[UID]` SORT `[RETURN (...)]` (criteria) charset keys.
    Sort {
        /// UID SORT.
        uid: bool,
        /// RETURN options (ESORT), if any.
        ret: Option<Vec<SearchReturn>>,
        /// Sort criteria.
        criteria: Vec<SortCriterion>,
        /// Charset, upper-cased.
        charset: String,
        /// Search criteria.
        key: SearchKey,
    },
    /// `[UID]` THREAD algorithm charset keys.
    Thread {
        /// UID THREAD.
        uid: bool,
        /// Algorithm.
        algorithm: ThreadAlgorithm,
        /// Charset, upper-cased.
        charset: String,
        /// Search criteria.
        key: SearchKey,
    },
    /// GETQUOTA root.
    GetQuota(Vec<u8>),
    /// GETQUOTAROOT mailbox.
    GetQuotaRoot(MailboxName),
    /// SETQUOTA root ((resource limit)...).
    SetQuota(Vec<u8>, Vec<(String, u64)>),
    /// COMPRESS mechanism (upper-cased).
    Compress(String),
}
