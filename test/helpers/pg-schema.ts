/**
 * What PostgreSQL says about the tables in a database (columns, indexes, sequences, constraints):
 * compared between the tables real Prosody 0.12.3 created and ours, and with the recorded
 * test/fixtures/storage/prosody-pg-schema.txt.
 */
export const DESCRIBE_SCHEMA = [
  `SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
  `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`,
  `SELECT sequence_name, data_type, start_value, increment FROM information_schema.sequences WHERE sequence_schema = 'public'`,
  `SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY conname`,
  `SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()`,
].join(";\n");
