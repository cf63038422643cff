//! Recovery: torn tails, damage, salvage, snapshots and their leftovers.

use super::*;
use crate::store::log::files;
use crate::store::log::record::Body;

#[test]
fn truncating_the_last_record_at_every_offset_keeps_exactly_the_complete_records() {
    let all = users(5);
    let (log, starts) = log_of(&all);
    let last = starts[4];
    for cut in last..=log.len() {
        let dir = TempDir::new("torn");
        fs::write(dir.segment(1), &log[..cut]).unwrap();
        let (mem, found) = recover_into_fresh(&dir, false).unwrap();
        let kept = if cut == log.len() { 5 } else { 4 };
        assert_holds_exactly(&mem, &all[..kept]);
        // The last batch's `synced` record is kept if it is whole.
        let sound_len = match cut {
            _ if kept == 5 => log.len(),
            c if c >= last + MARK_LEN => last + MARK_LEN,
            _ => last,
        };
        assert_eq!(
            fs::metadata(dir.segment(1)).unwrap().len(),
            sound_len as u64
        );
        assert_eq!(found.active.2, sound_len as u64);
        assert_eq!(
            found.notes.len(),
            usize::from(cut != sound_len),
            "cut at {cut}"
        );
        drop(found);

        let (again, found) = recover_into_fresh(&dir, false).unwrap();
        assert_holds_exactly(&again, &all[..kept]);
        assert!(
            found.notes.is_empty(),
            "a second recovery changed something: {:?}",
            found.notes
        );
        assert_eq!(
            fs::metadata(dir.segment(1)).unwrap().len(),
            sound_len as u64
        );
    }
}

#[test]
fn a_last_record_whose_end_never_reached_the_disk_is_cut_as_torn() {
    let all = users(5);
    let (log, starts) = log_of(&all);
    for zeroed_from in starts[4] + 1..log.len() {
        let dir = TempDir::new("zeros");
        let mut bytes = log.clone();
        bytes[zeroed_from..].fill(0);
        // What a file system that extended the file before the data landed leaves, plus the
        // preallocated zeros some leave after it.
        bytes.extend_from_slice(&[0; 512]);
        fs::write(dir.segment(1), &bytes).unwrap();
        let (mem, found) = recover_into_fresh(&dir, false).unwrap();
        assert_holds_exactly(&mem, &all[..4]);
        assert!(found.notes[0].contains("torn"), "{:?}", found.notes);
    }
}

#[test]
fn a_flipped_byte_mid_file_refuses_to_start_naming_the_file_and_offset() {
    let all = users(40);
    let (log, starts) = log_of(&all);
    let k = 20;
    for at in starts[k]..starts[k + 1] {
        let dir = TempDir::new("flip");
        let mut bytes = log.clone();
        bytes[at] ^= 0x40;
        fs::write(dir.segment(1), &bytes).unwrap();
        let err = refusal(&dir);
        let message = err;
        assert!(
            message.contains(&dir.segment(1).display().to_string()),
            "{message}"
        );
        // The bad frame is the batch's `synced` record or its create.
        let frame = if at < starts[k] + MARK_LEN {
            starts[k]
        } else {
            starts[k] + MARK_LEN
        };
        assert!(
            message.contains(&format!("at offset {frame}:")),
            "byte {at}: {message}"
        );
        assert_eq!(
            fs::read(dir.segment(1)).unwrap(),
            bytes,
            "a refused start changed the file"
        );

        let (mem, found) = recover_into_fresh(&dir, true).unwrap();
        assert_holds_exactly(&mem, &all[..k]);
        assert!(found.notes[0].starts_with("salvage"), "{:?}", found.notes);
        drop(found);
        let (again, _) = recover_into_fresh(&dir, false).unwrap();
        assert_holds_exactly(&again, &all[..k]);
    }
}

#[test]
fn damage_in_an_earlier_segment_is_never_taken_for_a_torn_tail() {
    let all = users(10);
    let (log, starts) = log_of(&all[..5]);
    let dir = TempDir::new("early");
    fs::write(dir.segment(1), &log[..starts[4] + 3]).unwrap();
    fs::write(dir.segment(2), log_of(&all[5..]).0).unwrap();
    let err = refusal(&dir);
    assert!(
        err.contains(&format!(
            "{} is damaged at offset {}",
            dir.segment(1).display(),
            starts[4]
        )),
        "{err}"
    );
}

#[test]
fn replay_over_a_snapshot_that_holds_part_of_the_segment_changes_nothing() {
    let all = users(30);
    let dir = TempDir::new("overlap");
    let mem = MemoryStore::new(4);
    for user in &all[..20] {
        put_into(&mem, user);
    }
    fs::write(dir.segment(1), log_of(&all[..15]).0).unwrap();
    // Segment 2 began before the snapshot was taken: records 15..20 are in both.
    fs::write(dir.segment(2), log_of(&all[15..]).0).unwrap();
    let taken = snapshot_of(&dir, 2, &mem);
    assert_eq!((taken.users, taken.removed), (20, 1));
    assert!(!dir.segment(1).exists());

    let (mem, found) = recover_into_fresh(&dir, false).unwrap();
    assert_holds_exactly(&mem, &all);
    assert_eq!((found.replayed, found.segments), (15, 1));
    drop(found);
    let (again, _) = recover_into_fresh(&dir, false).unwrap();
    assert_holds_exactly(&again, &all);
}

#[test]
fn updates_and_deletes_replay_to_the_same_state_twice_over() {
    let all = users(3);
    let mut log = log_of(&all).0;
    let mut moved = all[0].changed("moved", "moved@x");
    moved.email = "Moved@X".into();
    moved.email_key = "moved@x".into();
    encode(
        &mut log,
        &Record::Update(moved.id, Body::Stored(&record_of(&moved))),
    );
    encode(&mut log, &Record::Delete(all[1].id));
    let twice = [log.clone(), log].concat();
    let dir = TempDir::new("ops");
    fs::write(dir.segment(1), twice).unwrap();
    let (mem, _) = recover_into_fresh(&dir, false).unwrap();
    assert_holds_exactly(&mem, &[moved.clone(), all[2].clone()]);
    assert_eq!(mem.version_now(moved.id), Some(2));
    let emails = mem.emails();
    assert_eq!(emails.holder(&all[0].email_key), None);
    assert_eq!(emails.holder(&all[1].email_key), None);
}

#[test]
fn leftovers_of_a_crash_mid_snapshot_are_removed_at_start() {
    let all = users(12);
    let dir = TempDir::new("leftovers");
    let mem = MemoryStore::new(2);
    for user in &all[..8] {
        put_into(&mem, user);
    }
    fs::write(dir.segment(1), log_of(&all[..4]).0).unwrap();
    fs::write(dir.segment(2), log_of(&all[4..8]).0).unwrap();
    fs::write(dir.segment(3), log_of(&all[8..]).0).unwrap();
    // As if userd died after the rename, before deleting what the snapshot replaces, while
    // a later snapshot was being written.
    snapshot_of(&dir, 3, &mem);
    fs::write(dir.segment(1), log_of(&all[..4]).0).unwrap();
    fs::write(dir.0.join(files::temp_name(4)), b"partial").unwrap();

    let (mem, found) = recover_into_fresh(&dir, false).unwrap();
    assert_holds_exactly(&mem, &all);
    let listing = files::list(&dir.dir()).unwrap();
    assert_eq!(listing.segments.keys().copied().collect::<Vec<_>>(), [3]);
    assert!(listing.temps.is_empty());
    assert_eq!(found.notes.len(), 2, "{:?}", found.notes);
}

#[test]
fn a_damaged_snapshot_refuses_to_start_and_salvage_rewrites_it() {
    let all = users(50);
    let dir = TempDir::new("snapdamage");
    let mem = MemoryStore::new(1);
    for user in &all {
        put_into(&mem, user);
    }
    files::create_segment(&dir.dir(), 2).unwrap();
    snapshot_of(&dir, 2, &mem);
    let path = dir.0.join(files::snapshot_name(2));
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    let err = refusal(&dir);
    assert!(
        err.contains(&format!("{} is damaged at offset", path.display())),
        "{err}"
    );
    let (salvaged, found) = recover_into_fresh(&dir, true).unwrap();
    let kept = salvaged.len();
    assert!(kept > 0 && kept < all.len(), "kept {kept}");
    drop(found);
    let (again, found) = recover_into_fresh(&dir, false).unwrap();
    assert_eq!(again.len(), kept);
    assert!(found.notes.is_empty(), "{:?}", found.notes);
}

#[test]
fn a_missing_segment_refuses_to_start() {
    let all = users(4);
    let dir = TempDir::new("gap");
    fs::write(dir.segment(1), log_of(&all[..2]).0).unwrap();
    fs::write(dir.segment(3), log_of(&all[2..]).0).unwrap();
    let err = refusal(&dir);
    assert!(err.contains("segments 2 to 2 are missing"), "{err}");
    let (mem, _) = recover_into_fresh(&dir, true).unwrap();
    assert_eq!(mem.len(), 4);
}
