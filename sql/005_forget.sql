/*
 * 005_forget.sql
 *    Erasure on request (`refinery forget`): the salted hashes of the
 *    contacts of erased people, so that a later run keeps them out without
 *    the database holding the contacts themselves.
 *
 * A hash is the hex SHA-256 of salt || kind || ':' || value, where kind is
 * 'phone' (value: the E.164 digits, no '+') or 'email' (value: the address
 * as the engine normalises it).  The salt is made here, once per database,
 * from two random UUIDs (gen_random_uuid() uses a strong random source);
 * without it the hashes cannot be checked against a list of numbers.
 */

CREATE TABLE refinery.forget_salt
(
	salt		bytea NOT NULL CONSTRAINT forget_salt_length CHECK (length(salt) = 32),
	only_row	boolean PRIMARY KEY DEFAULT true CONSTRAINT forget_salt_one_row CHECK (only_row)
);
INSERT INTO refinery.forget_salt (salt)
SELECT decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex');
REVOKE ALL ON refinery.forget_salt FROM PUBLIC;

COMMENT ON TABLE refinery.forget_salt IS
'The salt of the hashes in refinery.suppressed, one row made by the migration. Grant it to no reporting role: with it, a hash can be checked against a list of phone numbers.';
COMMENT ON COLUMN refinery.forget_salt.salt IS '32 random bytes.';
COMMENT ON COLUMN refinery.forget_salt.only_row IS 'Always true: the table has one row.';

CREATE TABLE refinery.suppressed
(
	kind		text NOT NULL CONSTRAINT suppressed_kind_check CHECK (kind IN ('phone', 'email')),
	hash		text NOT NULL CONSTRAINT suppressed_hash_check CHECK (hash ~ '^[0-9a-f]{64}$'),
	forgotten_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (kind, hash)
);

COMMENT ON TABLE refinery.suppressed IS
'Contacts of people erased with "refinery forget", as salted hashes only. Every run marks a lead carrying one of them blacklisted (rule suppress.forgotten) and writes none of its personal data. Only ever added to; a run fails, writing nothing, if a person is erased while it works.';
COMMENT ON COLUMN refinery.suppressed.kind IS 'phone or email.';
COMMENT ON COLUMN refinery.suppressed.hash IS 'Hex SHA-256 of the salt (refinery.forget_salt), the kind, '':'' and the value (E.164 digits without +, or the normalised e-mail address).';
COMMENT ON COLUMN refinery.suppressed.forgotten_at IS 'When the contact was erased.';
