/**
 * Parsed content of big data files, by path, with the bytes they were parsed from (or that we
 * wrote) and a pin on the inode holding them (pins.ts). A read reuses the parsed record only while
 * the file is that same unwritten inode, or, failing that check, holds exactly those bytes; it
 * saves the parsing, the expensive part for an invite_token.dat of thousands of invites.
 *
 * Cached records are shared: callers copy what they hand out and never change them, with one
 * exception: under the file's lock, DataFiles.writeChanges changes the record in place at the
 * moment its new bytes become the file's (splice.ts), so a record always matches its bytes.
 */
import type { EntryIndex } from "../lua/serialize.js";
import type { KeyvalData } from "../types.js";
import { unpin, type Pin } from "./pins.js";
import { Rope } from "./rope.js";

/** Smaller files are parsed again on every read (cheap); larger ones than the budget never cached. */
export const CACHE_MIN_BYTES = 64 * 1024;
const CACHE_BUDGET_BYTES = 48 * 1024 * 1024;

export interface Parsed {
  bytes: Rope;
  rec: KeyvalData | undefined;
  /** Where each member lies in `bytes`, when we wrote them (see splice.ts). */
  index?: EntryIndex;
  /** The inode `bytes` came from (see pins.ts); closed when the entry goes. */
  pin?: Pin;
}

export class ParseCache {
  /** In LRU order: most recently used last. */
  private readonly parsed = new Map<string, Parsed>();
  private bytes = 0;
  /** Serialised top-level values of cached records (see serializeFileBytes), by identity. */
  readonly entries = new WeakMap<object, Buffer>();

  get(file: string, bytes: Buffer | Rope): Parsed | undefined {
    const hit = this.parsed.get(file);
    if (!hit) return undefined;
    if (hit.bytes !== bytes && (bytes instanceof Rope || !hit.bytes.equals(bytes))) return undefined;
    this.parsed.delete(file);
    this.parsed.set(file, hit);
    return hit;
  }

  /** The entry of `file` as it is, without checking it against the file. */
  current(file: string): Parsed | undefined {
    return this.parsed.get(file);
  }

  drop(file: string): void {
    const old = this.parsed.get(file);
    if (old) {
      this.parsed.delete(file);
      this.bytes -= old.bytes.length;
      unpin(old.pin);
    }
  }

  put(file: string, bytes: Rope, rec: KeyvalData | undefined, index?: EntryIndex, pin?: Pin): void {
    this.drop(file);
    if (bytes.length < CACHE_MIN_BYTES || bytes.length > CACHE_BUDGET_BYTES) return unpin(pin);
    const entry: Parsed = { bytes, rec };
    if (index) entry.index = index;
    if (pin) entry.pin = pin;
    this.parsed.set(file, entry);
    this.bytes += bytes.length;
    this.trim();
  }

  /** The entry of `file`, if it is still `entry`, now stands for `bytes` (its record changed in place). */
  replaced(file: string, entry: Parsed, bytes: Rope, pin: Pin | undefined): boolean {
    if (this.parsed.get(file) !== entry || bytes.length > CACHE_BUDGET_BYTES) {
      if (this.parsed.get(file) === entry) this.drop(file);
      unpin(pin);
      return false;
    }
    this.bytes += bytes.length - entry.bytes.length;
    entry.bytes = bytes;
    this.repin(entry, pin);
    this.trim();
    return true;
  }

  /**
   * Takes the pin off `file`'s entry and hands it to the caller to close, when the inode it holds
   * has just been renamed over (DataFiles.store): the last close of a replaced inode frees its
   * blocks (~7 ms for 35 MB on ext4), which need not delay the write that replaced it.
   */
  detachPin(file: string): Pin | undefined {
    const entry = this.parsed.get(file);
    const pin = entry?.pin;
    if (entry) delete entry.pin;
    return pin;
  }

  /** The entry's bytes are (still) those of the inode `pin` holds. */
  repin(entry: Parsed, pin: Pin | undefined): void {
    if (entry.pin !== pin) unpin(entry.pin);
    if (pin) entry.pin = pin;
    else delete entry.pin;
  }

  private trim(): void {
    for (const [k, v] of this.parsed) {
      if (this.bytes <= CACHE_BUDGET_BYTES) break;
      this.parsed.delete(k);
      this.bytes -= v.bytes.length;
      unpin(v.pin);
    }
  }
}
