/**
 * Seeds for tests that draw random numbers (kill moments, compaction sizes, fuzz inputs): each
 * file draws from one seeded generator and prints its seed first, so a failure can be replayed:
 *
 *   TEST_SEED=<n> node scripts/run-tests.mjs <file>
 *
 * A file with its own older variable (FUZZ_SEED, LOCK_STRESS_SEED, HTTP_FUZZ_SEED) reads that one
 * first. Timing still varies between runs; the seed fixes every random choice the test makes.
 */
import { basename } from "node:path";
import { prng } from "../fixtures/internal/gen.js";

export const SEED_VARIABLE = "TEST_SEED";

/** The seed of this run: from the environment, else a new one. Throws on a value that is not an integer. */
export function testSeed(ownVariable?: string): number {
  const name = ownVariable !== undefined && process.env[ownVariable] !== undefined ? ownVariable : SEED_VARIABLE;
  const given = process.env[name];
  if (given === undefined || given === "") return Math.floor(Math.random() * 2 ** 31);
  const seed = Number(given);
  if (!Number.isSafeInteger(seed)) throw new Error(`${name}=${given}: a seed is an integer`);
  return seed;
}

/** A generator like Math.random, seeded by testSeed(); prints the seed and how to replay it. */
export function seededRandom(ownVariable?: string): { seed: number; random: () => number } {
  const seed = testSeed(ownVariable);
  const file = basename(process.argv[1] ?? "this file");
  console.log(`seed ${seed} (replay: ${ownVariable ?? SEED_VARIABLE}=${seed} node scripts/run-tests.mjs ${file})`);
  return { seed, random: prng(seed) };
}
