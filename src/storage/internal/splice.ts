/**
 * Changing a few members of a big data file without serialising the rest again.
 *
 * A file we wrote ourselves comes with an EntryIndex (where each member's bytes lie). Changing
 * keys then costs a copy of the bytes, not a serialisation of every member: an invite_token.dat of
 * 100k invites is 35 MB, which takes ~200 ms to serialise again; the new bytes are views of the
 * old ones plus the changed members (rope.ts), written with one writev.
 *
 * The result is exactly what serialising the changed record would give (the tests hold it to
 * that), because the plan follows JavaScript's own member order: a replaced key keeps its place, a
 * removed one leaves it, a new one (or one removed and set again) goes last. Keys that are array
 * indices ("0", "17") would be ordered first by JavaScript, so a batch adding one falls back to a
 * full serialisation, as does a batch that empties the record (the file is removed instead).
 */
import type { StoreValue } from "../types.js";
import { serializeBytes, type EntryIndex } from "../lua/serialize.js";
import { setOwn } from "../values.js";
import { Rope } from "./rope.js";

/** A change of one key: a value, or undefined to remove the key. */
export type KeyChange = readonly [string, StoreValue | undefined];

export type SplicePlan =
  | { kind: "unchanged" }
  | { kind: "full" }
  | {
      kind: "splice";
      bytes: Rope;
      /** Brings the index of the old bytes to the new ones (call once they are the file's). */
      commit(index: EntryIndex): void;
    };

const CLOSE = Buffer.from("\n};\n", "latin1");
const isArrayIndex = (k: string) => /^(?:0|[1-9][0-9]{0,9})$/.test(k) && Number(k) < 4294967295;

/** The bytes of one top-level member, as the full serialisation writes it ("\n\t[key] = value;"). */
function memberBytes(key: string, value: StoreValue): Buffer {
  const one: Record<string, StoreValue> = {};
  setOwn(one, key, value);
  const b = serializeBytes(one); // "{" + member + "\n}"
  return b.subarray(1, b.length - 2);
}

/** How to turn `bytes` (whose members `index` locates) into the record after `changes`. */
export function planSplice(bytes: Rope, index: EntryIndex, changes: readonly KeyChange[]): SplicePlan {
  if (!bytes.endsWith(CLOSE)) return { kind: "full" };
  // Members that stay where they are, with their new value (undefined: removed), and the members
  // that go last, in order (a Map keeps a re-set key in place and moves a deleted-then-set one last).
  const inPlace = new Map<string, StoreValue | undefined>();
  const tail = new Map<string, StoreValue>();
  let changed = false;
  for (const [key, value] of changes) {
    const original = index.has(key) && !(inPlace.has(key) && inPlace.get(key) === undefined);
    if (value === undefined) {
      if (tail.delete(key)) changed = true;
      else if (original) {
        inPlace.set(key, undefined);
        changed = true;
      }
    } else {
      changed = true;
      if (tail.has(key)) tail.set(key, value);
      else if (original) inPlace.set(key, value);
      else if (isArrayIndex(key)) return { kind: "full" };
      else tail.set(key, value);
    }
  }
  if (!changed) return { kind: "unchanged" };
  let removed = 0;
  for (const v of inPlace.values()) if (v === undefined) removed++;
  if (index.size - removed + tail.size === 0) return { kind: "full" };

  // The cuts, in file order: [start, end, new member bytes or undefined].
  const cuts: [string, number, number, Buffer | undefined][] = [];
  for (const [key, value] of inPlace) {
    const [s, e] = index.get(key)!;
    cuts.push([key, s, e, value === undefined ? undefined : memberBytes(key, value)]);
  }
  cuts.sort((a, b) => a[1] - b[1]);
  const appended = [...tail].map(([key, value]) => [key, memberBytes(key, value)] as const);
  const pieces: Buffer[] = [];
  let pos = 0;
  for (const [, s, e, b] of cuts) {
    pieces.push(...bytes.pieces(pos, s));
    if (b) pieces.push(b);
    pos = e;
  }
  pieces.push(...bytes.pieces(pos, bytes.length - CLOSE.length));
  for (const [, b] of appended) pieces.push(b);
  pieces.push(CLOSE);
  const out = Rope.from(pieces);

  return {
    kind: "splice",
    bytes: out,
    commit(idx) {
      if (cuts.length > 0) {
        // Shift every member after a cut by the size change of the cuts before it.
        const byKey = new Map(cuts.map((c) => [c[0], c] as const));
        let delta = 0;
        let next = 0; // cuts[next] is the first cut not yet passed
        for (const [key, range] of idx) {
          while (next < cuts.length && cuts[next]![1] < range[0]) {
            const c = cuts[next++]!;
            delta += (c[3]?.length ?? 0) - (c[2] - c[1]);
          }
          const cut = byKey.get(key);
          if (cut && !cut[3]) idx.delete(key);
          else if (cut) idx.set(key, [range[0] + delta, range[0] + delta + cut[3]!.length]);
          else if (delta !== 0) idx.set(key, [range[0] + delta, range[1] + delta]);
        }
      }
      let at = out.length - CLOSE.length - appended.reduce((n, [, b]) => n + b.length, 0);
      for (const [key, b] of appended) {
        idx.delete(key); // a key removed and set again moves last, as in the record
        idx.set(key, [at, at + b.length]);
        at += b.length;
      }
    },
  };
}
