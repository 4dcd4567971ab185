//! Replaying one log segment, and deciding what a damaged frame in it is: a torn write a crash
//! can leave, or corruption of bytes that had been durable.

use super::{Progress, RecoveryError, Replay, read_header};
use crate::frame::{self, AfterDamage, Damage, FrameReader, Item, MARK_LEN, SEAL_MARK};
use crate::header::{HEADER_LEN, Kind};
use crate::storage::Storage;

/// What a damaged frame is taken for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Possibly a partial write left by a crash: cut it off with a warning. `synced` is the last
    /// offset known to be synced; `None` for a version-1 segment, which does not record it.
    Torn { synced: Option<u64> },
    /// Bytes that had been durable were changed.
    Corrupt,
}

/// The first damaged frame of a segment.
#[derive(Debug)]
pub(super) struct Damaged {
    pub(super) offset: u64,
    /// What is wrong there, for the operator.
    pub(super) reason: String,
    pub(super) verdict: Verdict,
}

pub(super) struct SegmentOutcome {
    pub(super) next_lsn: u64,
    pub(super) replayed: u64,
    /// The segment's length.
    pub(super) bytes: u64,
    pub(super) damage: Option<Damaged>,
}

/// The warning for a torn tail cut off the end of `file` (`len` bytes) at `offset`.
pub(super) fn torn_warning(
    file: &str,
    len: u64,
    offset: u64,
    reason: &str,
    synced: Option<u64>,
) -> String {
    let cut = len - offset;
    match synced {
        Some(synced) => format!(
            "cut off {cut} bytes at the end of {file} from byte {offset} ({reason}): they lie \
             after the last point known to be synced (byte {synced}), where a crash can leave a \
             partial write; if kvs ran with --fsync always, those records were never acknowledged"
        ),
        None => format!(
            "cut off {cut} bytes at the end of {file} from byte {offset} ({reason}): a version-1 \
             segment does not record what was synced, so they are taken for a partial write left \
             by a crash"
        ),
    }
}

/// Replays the records of segment `name`, whose first LSN is `first`, into `sink` (those from
/// `start` on). `last` says whether it is the newest segment, the only one a crash can tear.
pub(super) fn replay_segment(
    storage: &dyn Storage,
    name: &str,
    first: u64,
    start: u64,
    last: bool,
    sink: &mut dyn Replay,
    progress: &mut Progress,
) -> Result<SegmentOutcome, RecoveryError> {
    let file = storage.describe(name);
    let io = |source| RecoveryError::Io {
        file: file.clone(),
        source,
    };
    let (mut reader, len) = storage.open(name).map_err(io)?;
    let mut outcome = SegmentOutcome {
        next_lsn: first,
        replayed: 0,
        bytes: len,
        damage: None,
    };
    let version = match read_header(&mut reader, len, Kind::Segment, &file)? {
        Some((lsn, version)) if lsn == first => version,
        Some(_) => {
            return Err(RecoveryError::Corrupt {
                file,
                offset: 0,
                what: "the header does not match the file name".to_owned(),
                truncatable: false,
            });
        }
        // A segment created but never given its whole header (which is synced before any
        // record is written): only the newest can be like that.
        None if last => {
            outcome.damage = Some(Damaged {
                offset: 0,
                reason: "the file ends inside its header".to_owned(),
                verdict: Verdict::Torn { synced: Some(0) },
            });
            return Ok(outcome);
        }
        None => {
            return Err(RecoveryError::Corrupt {
                file,
                offset: 0,
                what: "the file is too short for its header".to_owned(),
                truncatable: false,
            });
        }
    };
    let corrupt = |offset, reason: String| Damaged {
        offset,
        reason,
        verdict: Verdict::Corrupt,
    };
    let mut frames = FrameReader::for_version(reader, HEADER_LEN as u64, len, version);
    // Every byte before this offset is known to be durable; the header is synced at creation.
    let mut synced = HEADER_LEN as u64;
    loop {
        let offset = frames.offset();
        let damage = match frames.next_item().map_err(io)? {
            None => return Ok(outcome),
            Some(Item::Record(payload)) => {
                let lsn = outcome.next_lsn;
                if lsn >= start {
                    sink.log_record(lsn, payload)
                        .map_err(|why| RecoveryError::Corrupt {
                            file: file.clone(),
                            offset,
                            what: format!("record {lsn} cannot be applied: {why}"),
                            truncatable: true,
                        })?;
                    outcome.replayed += 1;
                }
                outcome.next_lsn += 1;
                progress.tick(name);
                continue;
            }
            Some(Item::Synced(at)) if (synced..=offset).contains(&at) => {
                synced = at;
                continue;
            }
            Some(Item::Synced(at)) => corrupt(
                offset,
                format!("a synced marker names byte {at}, which cannot be right at this place"),
            ),
            Some(Item::Seal(end)) if end != outcome.next_lsn => corrupt(
                offset,
                format!(
                    "the seal says the segment ends at LSN {end}, but its records end at {}",
                    outcome.next_lsn
                ),
            ),
            Some(Item::Seal(_)) if offset + MARK_LEN as u64 != len => corrupt(
                offset + MARK_LEN as u64,
                "the segment goes on after the seal a clean shutdown ended it with".to_owned(),
            ),
            Some(Item::Seal(_)) => return Ok(outcome),
            Some(Item::Trailer(_)) => corrupt(
                offset,
                "a snapshot's trailer is in the log segment".to_owned(),
            ),
            Some(Item::Damaged(damage)) => {
                let after = frames.after_damage().map_err(io)?;
                let context = Context {
                    last,
                    version,
                    synced,
                    next_lsn: outcome.next_lsn,
                };
                judge(offset, damage, after, &context)
            }
        };
        outcome.damage = Some(damage);
        return Ok(outcome);
    }
}

/// What is known about a segment where a damaged frame was found.
struct Context {
    last: bool,
    version: u32,
    /// The last offset known to be synced.
    synced: u64,
    /// The LSN the damaged frame would have had, were it a record.
    next_lsn: u64,
}

/// Whether the damaged frame at `offset` can be a torn write.
fn judge(offset: u64, damage: Damage, after: AfterDamage, segment: &Context) -> Damaged {
    let partial = damage == Damage::Incomplete || after.zero;
    let corrupt = |reason: String| Damaged {
        offset,
        reason,
        verdict: Verdict::Corrupt,
    };
    if !segment.last {
        return corrupt(damage.to_string());
    }
    if segment.version < 2 {
        return match partial {
            true => Damaged {
                offset,
                reason: damage.to_string(),
                verdict: Verdict::Torn { synced: None },
            },
            false => corrupt(damage.to_string()),
        };
    }
    let sealed = after
        .last
        .and_then(|bytes| frame::decode_mark(&bytes))
        .is_some_and(|(mark, end)| mark == SEAL_MARK && end >= segment.next_lsn);
    if sealed {
        return corrupt(format!(
            "{damage}, in a segment a clean shutdown sealed: this is damage, not a partial write"
        ));
    }
    // A synced marker read before the damage, or found after it, that names a later offset.
    let synced = segment.synced.max(after.synced.unwrap_or(0));
    if offset < synced {
        return corrupt(format!(
            "{damage}, before byte {synced}, which was known to be synced: this is damage, \
             not a partial write"
        ));
    }
    if !partial {
        return corrupt(format!("{damage}, and data follows it"));
    }
    Damaged {
        offset,
        reason: damage.to_string(),
        verdict: Verdict::Torn {
            synced: Some(segment.synced),
        },
    }
}
